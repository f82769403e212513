package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestTarball builds an image from two stand-in binaries and reads the tarball back the way
// `docker load` does: manifest.json with the tag, the config with entrypoint and user, and a
// layer holding both binaries.
func TestTarball(t *testing.T) {
	dir := t.TempDir()
	ctl, spk, kh := filepath.Join(dir, "c"), filepath.Join(dir, "s"), filepath.Join(dir, "k")
	if err := os.WriteFile(ctl, []byte("controller-binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spk, []byte("speaker-binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kh, []byte("plugin-binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	const tag = "ghcr.io/herald-lb/herald:v0.1.0"
	if err := run(options{tag: tag, controller: ctl, speaker: spk, plugin: kh, out: out, arch: "amd64"}); err != nil {
		t.Fatal(err)
	}

	// manifest.json, as docker load reads it.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				t.Fatalf("manifest.json: %v", err)
			}
		}
	}
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{tag}) || len(manifest[0].Layers) != 1 || manifest[0].Config == "" {
		t.Fatalf("manifest.json = %+v, want one image tagged %s with one layer", manifest, tag)
	}

	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/herald-controller"}, cfg.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if cfg.Config.User != NonRoot || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("user %q os %q arch %q, want %q linux amd64", cfg.Config.User, cfg.OS, cfg.Architecture, NonRoot)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	lr := tar.NewReader(rc)
	for {
		h, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(lr)
		files[h.Name] = string(data)
		if h.Name == "herald-speaker" || h.Name == "herald-controller" || h.Name == "kubectl-herald" {
			if h.Mode&0o111 == 0 {
				t.Errorf("%s is not executable (mode %o)", h.Name, h.Mode)
			}
		}
	}
	if files["herald-controller"] != "controller-binary" || files["herald-speaker"] != "speaker-binary" {
		t.Errorf("layer binaries: controller %q speaker %q", files["herald-controller"], files["herald-speaker"])
	}
	if files["kubectl-herald"] != "plugin-binary" {
		t.Errorf("layer kubectl-herald: %q", files["kubectl-herald"])
	}
	if _, ok := files["etc/passwd"]; !ok {
		t.Error("layer has no etc/passwd")
	}
	for n := range files {
		if n == "bin/sh" || filepath.Base(n) == "sh" {
			t.Errorf("layer has a shell: %s", n)
		}
	}
}

// The kubectl plugin is optional.
func TestRootfsWithoutPlugin(t *testing.T) {
	dir := t.TempDir()
	ctl, spk := filepath.Join(dir, "c"), filepath.Join(dir, "s")
	for _, p := range []string{ctl, spk} {
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	layer, err := rootfs(ctl, spk, "")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if slices.Contains(names, "kubectl-herald") || !slices.Contains(names, "herald-speaker") {
		t.Errorf("layer files %v: want the speaker and no kubectl-herald", names)
	}
	if _, err := rootfs(ctl, spk, filepath.Join(dir, "missing")); err == nil {
		t.Error("rootfs with a missing plugin binary: no error")
	}
}
