// SPDX-License-Identifier: Apache-2.0

// Package nestedns drives berthd with containerd 1.6's Go client through nested contexts: each
// namespaces.WithNamespace (and leases.WithLease) on a context that already has one prepends a header
// value, and the innermost one, sent first, is the one that counts (as containerd's server reads it).
// It also checks that a namespace holding images, blobs, containers or snapshots cannot be deleted
// (FailedPrecondition), while one holding only leases can, as containerd's metadata store decides.
package nestedns

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var buildImage = flag.String("build-image", "", "tests/fixtures/images/build-image.sh")

const (
	decoy       = "nest-decoy" // the outer namespace of every nested context: must stay empty
	snapshotter = "overlayfs"
	gcRoot      = "containerd.io/gc.root"
)

func newClient(t *testing.T) *containerd.Client {
	t.Helper()
	client, err := containerd.New(os.Getenv("BERTH_ADDRESS"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// nested is a context for namespace ns, set on one that was for the decoy namespace.
func nested(ns string) context.Context {
	return namespaces.WithNamespace(namespaces.WithNamespace(context.Background(), decoy), ns)
}

// busyboxTar builds the busybox fixture image and returns its OCI archive.
func busyboxTar(t *testing.T) string {
	t.Helper()
	if *buildImage == "" {
		t.Fatal("-build-image is required")
	}
	dir := t.TempDir()
	out, err := exec.Command("sh", *buildImage, "busybox", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	return filepath.Join(dir, "busybox-oci.tar")
}

func imageNames(t *testing.T, client *containerd.Client, ns string) []string {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	list, err := client.ImageService().List(ctx)
	if err != nil {
		t.Fatalf("list images in %s: %v", ns, err)
	}
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	return names
}

// expectDecoyEmpty fails when anything reached the outer namespace of a nested context.
func expectDecoyEmpty(t *testing.T, client *containerd.Client) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), decoy)
	if names := imageNames(t, client, decoy); len(names) > 0 {
		t.Errorf("images went to the outer namespace: %v", names)
	}
	if cs, err := client.ContainerService().List(ctx); err != nil || len(cs) > 0 {
		t.Errorf("containers in the outer namespace: %d (%v)", len(cs), err)
	}
	var blobs int
	if err := client.ContentStore().Walk(ctx, func(content.Info) error { blobs++; return nil }); err != nil || blobs > 0 {
		t.Errorf("blobs in the outer namespace: %d (%v)", blobs, err)
	}
}

// expectDeleteRefused checks that deleting ns fails with FailedPrecondition naming what it holds.
func expectDeleteRefused(t *testing.T, client *containerd.Client, ns, holds string) {
	t.Helper()
	err := client.NamespaceService().Delete(context.Background(), ns)
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("delete namespace %s holding %s: want FailedPrecondition, got %v", ns, holds, err)
	}
	if !strings.Contains(err.Error(), holds) {
		t.Errorf("delete namespace %s: %q does not name %s", ns, err, holds)
	}
}

func expectDeleted(t *testing.T, client *containerd.Client, ns string) {
	t.Helper()
	if err := client.NamespaceService().Delete(context.Background(), ns); err != nil {
		t.Fatalf("delete namespace %s once empty: %v", ns, err)
	}
	all, err := client.NamespaceService().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		if n == ns {
			t.Errorf("namespace %s is still listed after its delete", ns)
		}
	}
}

func TestImportAndContainerInTheInnerNamespace(t *testing.T) {
	client := newClient(t)
	const ns = "nest-import"
	ctx := nested(ns)
	f, err := os.Open(busyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := client.Import(ctx, f)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(imgs) == 0 {
		t.Fatal("import made no image")
	}
	if names := imageNames(t, client, ns); len(names) != len(imgs) {
		t.Errorf("images in %s: %v, imported %d", ns, names, len(imgs))
	}
	image := containerd.NewImage(client, imgs[0])
	c, err := client.NewContainer(ctx, "nested", containerd.WithImage(image),
		containerd.WithSpec(&oci.Spec{Version: "1.0.2"}))
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	if _, err := client.ContainerService().Get(namespaces.WithNamespace(context.Background(), ns), c.ID()); err != nil {
		t.Errorf("the container is not in %s: %v", ns, err)
	}
	expectDecoyEmpty(t, client)
	expectDeleteRefused(t, client, ns, "containers")
	if err := c.Delete(ctx); err != nil {
		t.Fatalf("delete container: %v", err)
	}
	expectDeleteRefused(t, client, ns, "images")
	for _, i := range imgs {
		if err := client.ImageService().Delete(ctx, i.Name, images.SynchronousDelete()); err != nil {
			t.Fatalf("delete image %s: %v", i.Name, err)
		}
	}
	// a synchronous delete collected the blobs only the image held
	expectDeleted(t, client, ns)
}

func TestDeleteRefusedWhileTheNamespaceHoldsSomething(t *testing.T) {
	client := newClient(t)
	data := []byte("held by the namespace\n")
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	for _, tc := range []struct {
		ns, holds   string
		make, clean func(ctx context.Context) error
	}{
		{"nest-images", "images",
			func(ctx context.Context) error {
				_, err := client.ImageService().Create(ctx, images.Image{Name: "nest/only:1", Target: desc})
				return err
			},
			func(ctx context.Context) error { return client.ImageService().Delete(ctx, "nest/only:1") }},
		{"nest-blobs", "blobs",
			func(ctx context.Context) error {
				return content.WriteBlob(ctx, client.ContentStore(), "nest-blob", bytes.NewReader(data), desc,
					content.WithLabels(map[string]string{gcRoot: "test"}))
			},
			func(ctx context.Context) error { return client.ContentStore().Delete(ctx, desc.Digest) }},
		{"nest-containers", "containers",
			func(ctx context.Context) error {
				_, err := client.NewContainer(ctx, "only", containerd.WithSpec(&oci.Spec{Version: "1.0.2"}))
				return err
			},
			func(ctx context.Context) error { return client.ContainerService().Delete(ctx, "only") }},
		{"nest-snapshots", "snapshots",
			func(ctx context.Context) error {
				_, err := client.SnapshotService(snapshotter).Prepare(ctx, "only", "",
					snapshots.WithLabels(map[string]string{gcRoot: "test"}))
				return err
			},
			func(ctx context.Context) error { return client.SnapshotService(snapshotter).Remove(ctx, "only") }},
	} {
		t.Run(tc.holds, func(t *testing.T) {
			ctx := nested(tc.ns)
			if err := tc.make(ctx); err != nil {
				t.Fatalf("make %s: %v", tc.holds, err)
			}
			expectDecoyEmpty(t, client)
			expectDeleteRefused(t, client, tc.ns, tc.holds)
			if err := tc.clean(ctx); err != nil {
				t.Fatalf("remove %s: %v", tc.holds, err)
			}
			expectDeleted(t, client, tc.ns)
		})
	}
}

// Leases do not keep a namespace: containerd's metadata store deletes them with it.
func TestLeasesGoWithTheirNamespace(t *testing.T) {
	client := newClient(t)
	const ns = "nest-leases"
	ctx := nested(ns)
	if _, err := client.LeasesService().Create(ctx, leases.WithID("only")); err != nil {
		t.Fatalf("create lease: %v", err)
	}
	if ls, err := client.LeasesService().List(namespaces.WithNamespace(context.Background(), decoy)); err != nil || len(ls) > 0 {
		t.Errorf("leases in the outer namespace: %d (%v)", len(ls), err)
	}
	expectDeleted(t, client, ns)
	if ls, err := client.LeasesService().List(ctx); err != nil || len(ls) > 0 {
		t.Errorf("leases outlived their namespace: %d (%v)", len(ls), err)
	}
}

// A snapshot prepared under nested leases joins the innermost lease only.
func TestNestedLeaseTakesTheSnapshot(t *testing.T) {
	client := newClient(t)
	ctx := namespaces.WithNamespace(context.Background(), "nest-lease")
	ls := client.LeasesService()
	for _, id := range []string{"outer", "inner"} {
		if _, err := ls.Create(ctx, leases.WithID(id)); err != nil {
			t.Fatalf("create lease %s: %v", id, err)
		}
	}
	lctx := leases.WithLease(leases.WithLease(ctx, "outer"), "inner")
	if _, err := client.SnapshotService(snapshotter).Prepare(lctx, "leased", ""); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	holds := func(id string) bool {
		rs, err := ls.ListResources(ctx, leases.Lease{ID: id})
		if err != nil {
			t.Fatalf("list resources of %s: %v", id, err)
		}
		for _, r := range rs {
			if r.ID == "leased" && r.Type == "snapshots/"+snapshotter {
				return true
			}
		}
		return false
	}
	if !holds("inner") || holds("outer") {
		t.Errorf("the snapshot should be in lease inner only: inner %v, outer %v", holds("inner"), holds("outer"))
	}
	if err := client.SnapshotService(snapshotter).Remove(ctx, "leased"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"outer", "inner"} {
		if err := ls.Delete(ctx, leases.Lease{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	expectDeleted(t, client, "nest-lease")
}
