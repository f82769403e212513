package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRoot is the user and group the image runs as by default.
const NonRoot = "65532:65532"

type options struct {
	tag, controller, speaker, out, arch, version string
	// plugin is the kubectl-herald binary; optional.
	plugin string
}

// epoch is the time stamp of every file and of the image, so builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

func run(o options) error {
	if o.tag == "" || o.controller == "" || o.speaker == "" || o.out == "" {
		return errors.New("--tag, --controller, --speaker and --out are required")
	}
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return fmt.Errorf("parsing --tag %q: %w", o.tag, err)
	}
	if o.version == "" {
		o.version = ref.TagStr()
	}
	img, err := build(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return fmt.Errorf("creating the output folder: %w", err)
	}
	if err := tarball.WriteToFile(o.out, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", o.out, err)
	}
	return nil
}

// build assembles the image from the two binaries.
func build(o options) (v1.Image, error) {
	layerTar, err := rootfs(o.controller, o.speaker, o.plugin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("making the layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/mkimage", Comment: "herald-controller, herald-speaker"},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = o.arch
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config = v1.Config{
		Entrypoint: []string{"/herald-controller"},
		User:       NonRoot,
		WorkingDir: "/",
		Env:        []string{"PATH=/"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "herald",
			"org.opencontainers.image.description": "Herald bare-metal LoadBalancer: /herald-controller (default) and /herald-speaker",
			"org.opencontainers.image.source":      "https://github.com/herald-lb/herald",
			"org.opencontainers.image.version":     o.version,
		},
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	return img, nil
}

// rootfs returns the layer's uncompressed tar: the binaries, the user database and /tmp. plugin
// (kubectl-herald) is left out when empty.
func rootfs(controller, speaker, plugin string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: epoch, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	ctl, err := os.ReadFile(controller)
	if err != nil {
		return nil, fmt.Errorf("reading the controller binary: %w", err)
	}
	spk, err := os.ReadFile(speaker)
	if err != nil {
		return nil, fmt.Errorf("reading the speaker binary: %w", err)
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")) },
		func() error { return dir("tmp/", 0o1777) },
		func() error { return file("herald-controller", 0o755, ctl) },
		func() error { return file("herald-speaker", 0o755, spk) },
	}
	if plugin != "" {
		kh, err := os.ReadFile(plugin)
		if err != nil {
			return nil, fmt.Errorf("reading the kubectl-herald binary: %w", err)
		}
		steps = append(steps, func() error { return file("kubectl-herald", 0o755, kh) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("writing the layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the layer: %w", err)
	}
	return buf.Bytes(), nil
}
