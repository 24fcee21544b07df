// SPDX-License-Identifier: Apache-2.0

// Package contentsuite runs containerd's own content store test suite against berthd over the wire, through
// the containerd 1.6 Go client's remote content store, wired as containerd's integration test wires it:
// every test gets namespaces of its own and a lease, and its cleanup removes what it left.
package contentsuite

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/content/testsuite"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
)

func newContentStore(ctx context.Context, root string) (context.Context, content.Store, func() error, error) {
	client, err := containerd.New(os.Getenv("BERTH_ADDRESS"))
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		count uint64
		cs    = client.ContentStore()
		name  = testsuite.Name(ctx)
		used  []context.Context
	)
	wrap := func(ctx context.Context) (context.Context, func(context.Context) error, error) {
		n := atomic.AddUint64(&count, 1)
		ctx = namespaces.WithNamespace(ctx, fmt.Sprintf("%s-n%d", name, n))
		used = append(used, ctx)
		return client.WithLease(ctx)
	}
	ctx = testsuite.SetContextWrapper(ctx, wrap)

	cleanup := func() error {
		for _, ctx := range used {
			if err := removeAll(ctx, cs); err != nil {
				return err
			}
		}
		return client.Close()
	}
	return ctx, cs, cleanup, nil
}

// removeAll aborts the ingests and deletes the blobs a test left in the namespace of ctx.
func removeAll(ctx context.Context, cs content.Store) error {
	statuses, err := cs.ListStatuses(ctx)
	if err != nil {
		return err
	}
	for _, st := range statuses {
		if err := cs.Abort(ctx, st.Ref); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("failed to abort %s: %w", st.Ref, err)
		}
	}
	return cs.Walk(ctx, func(info content.Info) error {
		if err := cs.Delete(ctx, info.Digest); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		return nil
	})
}

func TestContent(t *testing.T) {
	if os.Getenv("BERTH_ADDRESS") == "" {
		t.Fatal("BERTH_ADDRESS is not set: run through tests/scripts/go_suite.sh")
	}
	testsuite.ContentSuite(t, "berthd", newContentStore)
	testsuite.ContentCrossNSSharedSuite(t, "berthd", newContentStore)
}
