// SPDX-License-Identifier: Apache-2.0

// Package snapshotsuite runs containerd's own snapshotter test suite (snapshots/testsuite) against berthd's
// Snapshots service over its socket, through the Go client's SnapshotService, once per snapshotter. Each
// case gets a namespace and a lease of its own (cases run in parallel, and berthd's collector runs), and
// after the suite every snapshot directory berthd made must be gone: removed storage is really removed.
package snapshotsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/testsuite"
)

var cases int64

// scoped is the remote snapshotter with every call in one case's namespace and lease.
type scoped struct {
	sn        snapshots.Snapshotter
	ns, lease string
}

func (s *scoped) in(ctx context.Context) context.Context {
	return leases.WithLease(namespaces.WithNamespace(ctx, s.ns), s.lease)
}

func (s *scoped) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	return s.sn.Stat(s.in(ctx), key)
}

func (s *scoped) Update(ctx context.Context, info snapshots.Info, paths ...string) (snapshots.Info, error) {
	return s.sn.Update(s.in(ctx), info, paths...)
}

func (s *scoped) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	return s.sn.Usage(s.in(ctx), key)
}

func (s *scoped) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	return s.sn.Mounts(s.in(ctx), key)
}

func (s *scoped) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.sn.Prepare(s.in(ctx), key, parent, opts...)
}

func (s *scoped) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.sn.View(s.in(ctx), key, parent, opts...)
}

func (s *scoped) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	return s.sn.Commit(s.in(ctx), name, key, opts...)
}

func (s *scoped) Remove(ctx context.Context, key string) error {
	return s.sn.Remove(s.in(ctx), key)
}

func (s *scoped) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	return s.sn.Walk(s.in(ctx), fn, filters...)
}

func (s *scoped) Close() error { return nil }

// removeAll removes every snapshot of the case, children before parents.
func (s *scoped) removeAll(ctx context.Context) error {
	for {
		var keys []string
		if err := s.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			keys = append(keys, info.Name)
			return nil
		}); err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		removed := 0
		for _, k := range keys {
			if s.Remove(ctx, k) == nil {
				removed++
			}
		}
		if removed == 0 {
			return fmt.Errorf("namespace %s: cannot remove %v", s.ns, keys)
		}
	}
}

func run(t *testing.T, name string) {
	addr := os.Getenv("BERTH_ADDRESS")
	if addr == "" {
		t.Skip("BERTH_ADDRESS not set: run through tests/scripts/go_suite.sh")
	}
	client, err := containerd.New(addr, containerd.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	remote := client.SnapshotService(name)
	t.Cleanup(func() {
		// every case removed its snapshots: after a Cleanup, no storage may be left behind
		ctx := namespaces.WithNamespace(context.Background(), "default")
		if c, ok := remote.(snapshots.Cleaner); ok {
			if err := c.Cleanup(ctx); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if root := os.Getenv("BERTH_TEST_ROOT"); root != "" {
			dir := filepath.Join(root, "io.containerd.snapshotter.v1."+name, "snapshots")
			left, _ := os.ReadDir(dir)
			for _, e := range left {
				t.Errorf("%s/%s: storage of a removed snapshot left behind", dir, e.Name())
			}
		}
		client.Close()
	})
	testsuite.SnapshotterSuite(t, name, func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		s := &scoped{sn: remote, ns: fmt.Sprintf("suite-%s-%d", name, atomic.AddInt64(&cases, 1))}
		nctx := namespaces.WithNamespace(ctx, s.ns)
		l, err := client.LeasesService().Create(nctx, leases.WithRandomID())
		if err != nil {
			return nil, nil, err
		}
		s.lease = l.ID
		return s, func() error {
			err := s.removeAll(context.Background())
			if derr := client.LeasesService().Delete(nctx, l); err == nil {
				err = derr
			}
			return err
		}, nil
	})
}

func TestOverlayfs(t *testing.T) { run(t, "overlayfs") }

func TestBtrfs(t *testing.T) { run(t, "btrfs") }
