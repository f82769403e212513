package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildImages builds the three image tarballs into <run>/cluster/images: the pause image and the
// backend image from the lab's commands, and Herald's image exactly as `make image` does (the two
// binaries, then hack/mkimage).
func (c *Cluster) buildImages(ctx context.Context) error {
	dir := filepath.Join(c.Dir, "images")
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", bin, err)
	}
	for _, b := range []struct{ out, pkg string }{
		{"labpause", "./e2e/cmd/labpause"},
		{"labbackend", "./e2e/cmd/labbackend"},
		{"herald-controller", "./controller"},
		{"herald-speaker", "./speaker"},
	} {
		if err := c.goCmd(ctx, "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(bin, b.out), b.pkg); err != nil {
			return err
		}
	}
	pause := filepath.Join(dir, "pause.tar")
	if err := writeImage(pause, PauseImage, map[string]string{"pause": filepath.Join(bin, "labpause")}, []string{"/pause"}); err != nil {
		return err
	}
	backend := filepath.Join(dir, "backend.tar")
	if err := writeImage(backend, BackendImage, map[string]string{"labbackend": filepath.Join(bin, "labbackend")}, []string{"/labbackend"}); err != nil {
		return err
	}
	herald := filepath.Join(dir, "herald.tar")
	if err := c.goCmd(ctx, "run", "./hack/mkimage", "--tag", HeraldImage, "--arch", runtime.GOARCH,
		"--controller", filepath.Join(bin, "herald-controller"), "--speaker", filepath.Join(bin, "herald-speaker"),
		"--out", herald); err != nil {
		return err
	}
	c.images = []string{pause, backend, herald}
	return nil
}

// goCmd runs the go tool in the repository, building static Linux binaries.
func (c *Cluster) goCmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = c.opts.RepoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w: %s", args, err, out)
	}
	return nil
}

// epoch stamps every file and image, so the same binaries give the same image.
var epoch = time.Unix(0, 0).UTC()

// writeImage writes a one-layer image tagged tag to out (the format `docker save` writes and
// `ctr images import` reads): files maps paths in the image to files on the host (all 0755), and
// entrypoint is the command.
func writeImage(out, tag string, files map[string]string, entrypoint []string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", tag, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for dst, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("reading %s for image %s: %w", src, tag, err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dst, Mode: 0o755, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerData := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerData)), nil })
	if err != nil {
		return fmt.Errorf("making the layer of %s: %w", tag, err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "e2e/cluster"}})
	if err != nil {
		return fmt.Errorf("making image %s: %w", tag, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.Created = runtime.GOARCH, "linux", v1.Time{Time: epoch}
	cfg.Config = v1.Config{Entrypoint: entrypoint, WorkingDir: "/", Env: []string{"PATH=/"}}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return fmt.Errorf("configuring image %s: %w", tag, err)
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
