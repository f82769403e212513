// Package manifests holds Herald's install YAML: the kustomization (kubectl apply -k manifests/)
// with the namespace, the generated CRDs (crds/), the RBAC roles generated from the code's
// +kubebuilder:rbac markers (rbac/) and their bindings (rbac.yaml), the controller Deployment, the
// speaker DaemonSet and the validating webhook configuration; the optional monitoring (monitoring/:
// PodMonitors, the alerts with their tests, the Grafana dashboard); and the Helm chart
// (helm/herald) that renders the same objects from copies of the generated files. It has no Go
// code; its tests lint and render the chart, parse and evaluate the alerts, and apply or dry-run
// every object on a real API server.
package manifests
