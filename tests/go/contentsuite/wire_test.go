// SPDX-License-Identifier: Apache-2.0

package contentsuite

// Write requests as other encoders may send them: berthd answers plain WRITEs early from its own reading of
// the wire (taking a big one while its frames arrive) and leaves every other message to the full protobuf
// decoder; both must give the bytes and digest protobuf's semantics say.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func varint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func field(b []byte, num int, wire int, v uint64, payload []byte) []byte {
	b = varint(b, uint64(num<<3|wire))
	if wire == 2 {
		b = varint(b, uint64(len(payload)))
		return append(b, payload...)
	}
	return varint(b, v)
}

// The fields of a WriteContentResponse the test checks: offset (4) and digest (6).
func parseResponse(b []byte) (offset int64, dgst string, err error) {
	for len(b) > 0 {
		key, n := uvarint(b)
		b = b[n:]
		switch key & 7 {
		case 0:
			v, n := uvarint(b)
			b = b[n:]
			if key>>3 == 4 {
				offset = int64(v)
			}
		case 2:
			l, n := uvarint(b)
			b = b[n:]
			if key>>3 == 6 {
				dgst = string(b[:l])
			}
			b = b[l:]
		default:
			return 0, "", fmt.Errorf("wire type %d in a response", key&7)
		}
	}
	return offset, dgst, nil
}

func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i, c := range b {
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			return v, i + 1
		}
	}
	return v, len(b)
}

func TestWriteEncodings(t *testing.T) {
	addr := os.Getenv("BERTH_ADDRESS")
	if addr == "" {
		t.Fatal("BERTH_ADDRESS is not set: run through tests/scripts/go_suite.sh")
	}
	conn, err := grpc.Dial("berthd", grpc.WithInsecure(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "containerd-namespace", "wire")
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
		"/containerd.services.content.v1.Content/Write", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}

	blob := make([]byte, 6<<20+123)
	rand.New(rand.NewSource(1)).Read(blob)
	const mib = 1 << 20
	var off int
	plain := func(p []byte) []byte { // action, offset, data: what ctr sends
		m := field(nil, 1, 0, 1, nil)
		m = field(m, 5, 0, uint64(off), nil)
		return field(m, 6, 2, 0, p)
	}
	type step struct {
		name string
		msg  func(p []byte) []byte
		n    int
	}
	steps := []step{
		{"canonical", plain, mib},
		{"data first", func(p []byte) []byte {
			m := field(nil, 6, 2, 0, p)
			m = field(m, 5, 0, uint64(off), nil)
			return field(m, 1, 0, 1, nil)
		}, mib},
		{"unknown field after data", func(p []byte) []byte { return field(plain(p), 15, 0, 7, nil) }, mib},
		{"data twice, the last wins", func(p []byte) []byte {
			m := field(nil, 1, 0, 1, nil)
			m = field(m, 5, 0, uint64(off), nil)
			m = field(m, 6, 2, 0, []byte("not these bytes"))
			return field(m, 6, 2, 0, p)
		}, mib},
		{"canonical, small", plain, 4097},
		{"canonical, unaligned", plain, mib},
		{"canonical, the rest", plain, len(blob) - 4*mib - 4097 - mib},
	}
	send := func(name string, m []byte) {
		if err := st.SendMsg(&m); err != nil {
			t.Fatalf("%s: send: %v", name, err)
		}
	}
	recv := func(name string, wantOffset int) {
		var resp []byte
		if err := st.RecvMsg(&resp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o, d, err := parseResponse(resp)
		if err != nil {
			t.Fatal(err)
		}
		if want := digest.FromBytes(blob[:wantOffset]).String(); o != int64(wantOffset) || d != want {
			t.Fatalf("%s: answered offset %d digest %s, want %d %s", name, o, d, wantOffset, want)
		}
	}
	send("stat", field(nil, 2, 2, 0, []byte("wire-ref")))
	recv("stat", 0)
	for i, s := range steps {
		send(s.name, s.msg(blob[off:off+s.n]))
		off += s.n
		if i%2 == 0 { // every other one pipelined: its answer is read after the next one went out
			continue
		}
		recv(steps[i-1].name, off-s.n)
		recv(s.name, off)
	}
	if len(steps)%2 == 1 {
		recv(steps[len(steps)-1].name, off)
	}
	if off != len(blob) {
		t.Fatalf("sent %d of %d bytes", off, len(blob))
	}
	want := digest.FromBytes(blob)
	commit := field(nil, 1, 0, 2, nil)
	commit = field(commit, 3, 0, uint64(len(blob)), nil)
	commit = field(commit, 4, 2, 0, []byte(want.String()))
	commit = field(commit, 5, 0, uint64(off), nil)
	send("commit", commit)
	recv("commit", len(blob))
	st.CloseSend()
	var rest []byte
	if err := st.RecvMsg(&rest); err != io.EOF {
		t.Fatalf("after the commit: %v", err)
	}

	// what the disk holds is what was hashed
	client, err := containerd.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cctx := namespaces.WithNamespace(context.Background(), "wire")
	ra, err := client.ContentStore().ReaderAt(cctx, ocispec.Descriptor{Digest: want, Size: int64(len(blob))})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	got := make([]byte, len(blob))
	if _, err := ra.ReadAt(got, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if !bytes.Equal(got, blob) {
		t.Fatalf("the stored blob differs: sha256 %x", sha256.Sum256(got))
	}
	if err := client.ContentStore().Delete(cctx, want); err != nil {
		t.Fatal(err)
	}
}
