// Command mkimage builds Herald's container image without a Docker engine: an empty (scratch)
// base plus one layer holding /herald-controller, /herald-speaker, /kubectl-herald (the kubectl
// plugin, when given), /etc/passwd and /etc/group (with the nonroot user 65532) and /tmp, written as a tarball in the `docker save` format with
// its tag, which `docker load` and `kind load image-archive` accept. The default entrypoint is
// the controller, running as 65532; the speaker's DaemonSet sets its command and runs it as root
// with only NET_RAW and NET_ADMIN.
//
//	go run ./hack/mkimage --tag ghcr.io/herald-lb/herald:v0.1.0 \
//	  --controller dist/image/herald-controller --speaker dist/image/herald-speaker \
//	  --kubectl-herald dist/image/kubectl-herald --out dist/herald-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var o options
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.StringVar(&o.tag, "tag", "", "image reference to write into the tarball (required)")
	fs.StringVar(&o.controller, "controller", "", "path of the static herald-controller binary (required)")
	fs.StringVar(&o.speaker, "speaker", "", "path of the static herald-speaker binary (required)")
	fs.StringVar(&o.plugin, "kubectl-herald", "", "path of the static kubectl-herald binary (optional)")
	fs.StringVar(&o.out, "out", "dist/herald-image.tar", "tarball to write")
	fs.StringVar(&o.arch, "arch", "amd64", "architecture the binaries are built for")
	fs.StringVar(&o.version, "version", "", "org.opencontainers.image.version label (default: the tag's)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
