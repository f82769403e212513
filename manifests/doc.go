// Package manifests holds Herald's install YAML: the kustomization (kubectl apply -k manifests/)
// with the namespace, the generated CRDs (crds/), RBAC, the controller Deployment, the speaker
// DaemonSet and the validating webhook configuration, and the Helm chart (helm/herald) that
// renders the same objects. It has no Go code; its tests apply the YAML to a real API server.
package manifests
