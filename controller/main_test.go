package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/controller/service"
	"github.com/herald-lb/herald/internal/logging"
)

func TestParseFlags(t *testing.T) {
	defaults := options{
		namespace: "herald-system", metricsAddr: ":7472", metricsSecure: true, healthAddr: ":7473",
		kubeAPIQPS: 1000, kubeAPIBurst: 2000, workers: service.DefaultServiceWorkers, gcPercent: 50, logOpts: logging.DefaultOptions(),
		enableWebhook: true, webhookPort: 9443, webhookConfigName: "herald-validating-webhook",
		webhookServiceName: "herald-webhook", memberlistSecret: "herald-memberlist",
		webhookCertDir: filepath.Join(os.TempDir(), "herald-webhook-certs"),
	}
	tests := []struct {
		name    string
		args    []string
		want    func(o *options)
		wantErr bool
	}{
		{name: "defaults", want: func(*options) {}},
		{
			name: "every flag the manifests use",
			args: []string{"--kubeconfig=/k", "--namespace=lb", "--lb-class=x.io/lb", "--metrics-addr=:1", "--health-addr=:2",
				"--kube-api-qps=50", "--kube-api-burst=60", "--service-workers=4", "--gc-percent=100", "--log-level=debug", "--log-format=text", "--enable-webhook=false", "--webhook-port=8443",
				"--webhook-cert-dir=/certs", "--webhook-config-name=w", "--webhook-service-name=s", "--memberlist-secret=m", "--leader-elect"},
			want: func(o *options) {
				o.kubeconfig, o.namespace, o.lbClass, o.metricsAddr, o.healthAddr = "/k", "lb", "x.io/lb", ":1", ":2"
				o.kubeAPIQPS, o.kubeAPIBurst, o.logOpts, o.enableWebhook, o.webhookPort = 50, 60, logging.Options{Level: slog.LevelDebug, Format: logging.FormatText}, false, 8443
				o.webhookCertDir, o.webhookConfigName, o.webhookServiceName, o.memberlistSecret = "/certs", "w", "s", "m"
				o.leaderElect, o.workers, o.gcPercent = true, 4, 100
			},
		},
		{name: "plain HTTP metrics for a lab", args: []string{"--metrics-secure=false"}, want: func(o *options) { o.metricsSecure = false }},
		{name: "bad log level", args: []string{"--log-level=loud"}, wantErr: true},
		{name: "bad log format", args: []string{"--log-format=xml"}, wantErr: true},
		{name: "zero qps", args: []string{"--kube-api-qps=0"}, wantErr: true},
		{name: "zero workers", args: []string{"--service-workers=0"}, wantErr: true},
		{name: "zero gc percent", args: []string{"--gc-percent=0"}, wantErr: true},
		{name: "empty namespace", args: []string{"--namespace="}, wantErr: true},
		{name: "bad webhook port", args: []string{"--webhook-port=70000"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %t", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			want := defaults
			tc.want(&want)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(options{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
