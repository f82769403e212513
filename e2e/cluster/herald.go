package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/lab"
)

// Names of what manifests/ installs.
const (
	Namespace         = lab.HeraldNamespace
	SpeakerDaemonSet  = "herald-speaker"
	ControllerDeploy  = "herald-controller"
	WebhookConfig     = "herald-validating-webhook"
	WebhookService    = "herald-webhook"
	SpeakerAccount    = "herald-speaker"
	ControllerAccount = "herald-controller"
	// HelmRelease is the release name of InstallHelm.
	HelmRelease = "herald"
)

// InstallHerald installs Herald as a user does, with the administrator's kubeconfig, and waits
// until the speakers run on every node, the controller is available and the webhook has its CA.
func (c *Cluster) InstallHerald(ctx context.Context, how Install) error {
	switch how {
	case InstallKustomize:
		if _, err := c.Kubectl(ctx, "apply", "--server-side", "-k", filepath.Join(c.opts.RepoRoot, "manifests")); err != nil {
			return fmt.Errorf("installing Herald from manifests/: %w", err)
		}
	case InstallHelm:
		helm := c.HelmPath()
		if _, err := os.Stat(helm); err != nil {
			return fmt.Errorf("installing Herald with helm: %w (run `make tools`)", err)
		}
		if _, err := run(ctx, helm, "--kubeconfig", c.AdminKubeconfig, "install", HelmRelease,
			filepath.Join(c.opts.RepoRoot, "manifests", "helm", "herald")); err != nil {
			return fmt.Errorf("installing Herald's chart: %w", err)
		}
	default:
		return fmt.Errorf("unknown way to install Herald %q", how)
	}
	return c.WaitHerald(ctx, 3*time.Minute)
}

// HelmPath is the helm binary InstallHelm uses.
func (c *Cluster) HelmPath() string {
	if c.opts.Helm != "" {
		return c.opts.Helm
	}
	return filepath.Join(c.opts.RepoRoot, "bin", "helm-"+HelmVersion)
}

// HelmVersion is the helm the Makefile installs into bin/.
const HelmVersion = "v3.22.0"

// WaitHerald waits until the speaker DaemonSet is ready on every node with its current template,
// the controller Deployment is available, and the webhook configuration carries a CA bundle.
func (c *Cluster) WaitHerald(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(context.Context) (bool, error) {
		if err := c.Check(); err != nil {
			return false, err
		}
		var ds appsv1.DaemonSet
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: SpeakerDaemonSet}, &ds); err != nil {
			last = err.Error()
			return false, nil
		}
		st := ds.Status
		if ds.Generation != st.ObservedGeneration || st.DesiredNumberScheduled != int32(len(c.Nodes)) ||
			st.NumberReady != st.DesiredNumberScheduled || st.UpdatedNumberScheduled != st.DesiredNumberScheduled || st.NumberUnavailable != 0 {
			last = fmt.Sprintf("speakers: %d desired, %d ready, %d updated (%d nodes)", st.DesiredNumberScheduled, st.NumberReady, st.UpdatedNumberScheduled, len(c.Nodes))
			return false, nil
		}
		var dep appsv1.Deployment
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: ControllerDeploy}, &dep); err != nil {
			last = err.Error()
			return false, nil
		}
		if dep.Generation != dep.Status.ObservedGeneration || dep.Status.AvailableReplicas < 1 || dep.Status.UpdatedReplicas < 1 {
			last = fmt.Sprintf("controller: %d available", dep.Status.AvailableReplicas)
			return false, nil
		}
		wh, err := c.Clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, WebhookConfig, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, w := range wh.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				last = "webhook " + w.Name + " has no caBundle yet"
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		bg := context.WithoutCancel(ctx)
		return fmt.Errorf("waiting for Herald (%s): %w\n%s\n%s\n%s", last, err, c.PodSummary(bg), c.HeraldLogs(bg, 20), c.CrashLogs(bg, 30))
	}
	return nil
}

// CrashLogs returns, for every Herald pod whose container has restarted, why it ended and the end
// of the log of its previous run.
func (c *Cluster) CrashLogs(ctx context.Context, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(Namespace)); err != nil {
		return "listing Herald's pods: " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		for _, st := range p.Status.ContainerStatuses {
			if st.RestartCount == 0 {
				continue
			}
			if t := st.LastTerminationState.Terminated; t != nil {
				fmt.Fprintf(&b, "==== %s/%s restarted %d times; last ended %s, exit code %d, signal %d: %s\n", p.Name, st.Name, st.RestartCount, t.Reason, t.ExitCode, t.Signal, t.Message)
			}
			out, err := c.Kubectl(ctx, "logs", "-n", Namespace, p.Name, "-c", st.Name, "--previous", "--tail", strconv.Itoa(n))
			if err != nil {
				out = err.Error()
			}
			b.WriteString(out)
		}
	}
	var events corev1.EventList
	if err := c.Client.List(ctx, &events, client.InNamespace(Namespace)); err == nil {
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning {
				fmt.Fprintf(&b, "event %s %s/%s: %s: %s (x%d)\n", e.LastTimestamp.Format(time.TimeOnly), e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message, e.Count)
			}
		}
	}
	return b.String()
}

// PodSummary lists Herald's pods with their phase and container states, for error messages.
func (c *Cluster) PodSummary(ctx context.Context) string {
	out, err := c.Kubectl(ctx, "get", "pods", "-A", "-o", "wide")
	if err != nil {
		return err.Error()
	}
	return out
}

// ApplyConfig creates Herald's lab configuration (the lab's pools, advertisements and peers)
// through the webhook, retrying while the webhook cannot be reached yet.
func (c *Cluster) ApplyConfig(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, o := range c.ConfigObjects() {
		var last error
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(context.Context) (bool, error) {
			last = c.Client.Create(ctx, o.DeepCopyObject().(client.Object))
			if apierrors.IsAlreadyExists(last) {
				return true, nil
			}
			if apierrors.IsInvalid(last) || apierrors.IsForbidden(last) {
				return false, last // the webhook answered: no use retrying
			}
			return last == nil, nil
		})
		if err != nil {
			return fmt.Errorf("creating %T %s (last: %w): %w", o, o.GetName(), last, err)
		}
	}
	return nil
}

// SpeakerPod returns the speaker pod running on node.
func (c *Cluster) SpeakerPod(ctx context.Context, node string) (*corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(Namespace), client.MatchingLabels{"app.kubernetes.io/component": "speaker"}); err != nil {
		return nil, fmt.Errorf("listing speaker pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: no speaker pod on %s", errNotFound, node)
}

var errNotFound = errors.New("not found")

// HeraldLogs returns the last n lines of every Herald pod's log (through the API server and the
// kubelets, as `kubectl logs` does), for failure messages.
func (c *Cluster) HeraldLogs(ctx context.Context, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := c.Kubectl(ctx, "logs", "-n", Namespace, "-l", "app.kubernetes.io/name=herald", "--prefix", "--tail", fmt.Sprint(n), "--max-log-requests", "10")
	if err != nil {
		return "Herald's logs: " + err.Error()
	}
	return "Herald's logs:\n" + out
}

// SpeakerMetricsPort is the speakers' metrics port in manifests/ (--metrics-addr=:7474), on the
// node addresses since the speaker runs with hostNetwork.
const SpeakerMetricsPort = 7474

// SpeakerMetrics returns the metrics page of node's speaker.
func (c *Cluster) SpeakerMetrics(ctx context.Context, node string) (string, error) {
	n := c.Node(node)
	if n == nil {
		return "", fmt.Errorf("no cluster node %q", node)
	}
	token, err := c.metricsToken(ctx)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(n.V4.String(), strconv.Itoa(SpeakerMetricsPort))+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := metricsHTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("reading the metrics of %s's speaker: %w", node, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("reading the metrics of %s's speaker: %w", node, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("reading the metrics of %s's speaker: %s: %s", node, resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// metricsHTTP reads the speakers' /metrics, served over HTTPS with a self-signed certificate.
var metricsHTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the speakers' self-signed serving certificate; the test checks authorization, not the server
}}

// MetricsScraper is the ServiceAccount (namespace default) the tests read metrics as: it is bound
// to the ClusterRole herald-metrics-reader that manifests/ and the chart ship, as an operator binds
// Prometheus' ServiceAccount.
const MetricsScraper = "herald-e2e-metrics"

// metricsToken returns a token of MetricsScraper, creating the account and its binding on first use.
func (c *Cluster) metricsToken(ctx context.Context) (string, error) {
	c.scrapeMu.Lock()
	defer c.scrapeMu.Unlock()
	if c.scrapeToken != "" {
		return c.scrapeToken, nil
	}
	for _, args := range [][]string{
		{"create", "serviceaccount", "-n", "default", MetricsScraper},
		{"create", "clusterrolebinding", MetricsScraper, "--clusterrole=herald-metrics-reader", "--serviceaccount=default:" + MetricsScraper},
	} {
		if out, err := c.Kubectl(ctx, args...); err != nil && !strings.Contains(out+err.Error(), "AlreadyExists") {
			return "", fmt.Errorf("making the metrics scraper's account (kubectl %s): %w", strings.Join(args, " "), err)
		}
	}
	out, err := c.Kubectl(ctx, "create", "token", "-n", "default", MetricsScraper, "--duration=2h")
	if err != nil {
		return "", fmt.Errorf("getting a token of %s: %w", MetricsScraper, err)
	}
	c.scrapeToken = strings.TrimSpace(out)
	return c.scrapeToken, nil
}

// WaitSpeakersConverged waits until every speaker counts all of them alive (herald_speaker_members).
func (c *Cluster) WaitSpeakersConverged(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := fmt.Sprintf("herald_speaker_members %d\n", len(c.Nodes))
	var last string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, n := range c.Nodes {
			body, err := c.SpeakerMetrics(ctx, n.Name)
			if err != nil {
				last = n.Name + ": " + err.Error()
				return false, nil
			}
			if !strings.Contains(body+"\n", want) {
				last = n.Name + " does not report " + strings.TrimSpace(want)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("speakers did not converge (%s): %w", last, err)
	}
	return nil
}

// RecentEvents returns the last n events of the cluster, all namespaces, oldest first.
func (c *Cluster) RecentEvents(ctx context.Context, n int) string {
	out, err := c.Kubectl(ctx, "get", "events", "-A", "--sort-by=.lastTimestamp", "-o",
		"custom-columns=LAST:.lastTimestamp,NS:.involvedObject.namespace,KIND:.involvedObject.kind,NAME:.involvedObject.name,REASON:.reason,MESSAGE:.message")
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var keep []string
	for _, l := range lines {
		if !strings.Contains(l, "MissingClusterDNS") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}
