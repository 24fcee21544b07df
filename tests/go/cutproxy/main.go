// SPDX-License-Identifier: Apache-2.0

// cutproxy is an HTTP proxy in front of a registry that misbehaves on blob downloads, for
// tests/scripts/registry_client.sh. Standard library only (Go 1.19).
//
//	-cut N      the first blob GET is cut (connection dropped) after N body bytes
//	-fail K     the first K blob GETs answer 503 with Retry-After: 1
//	-corrupt    every blob body has its first byte flipped (the digest no longer matches)
//
// Every request is logged as one line on stdout: "GET /v2/x/blobs/sha256:.. range=bytes=N- status=206
// bytes=M" (M: body bytes this proxy passed on), so a test can check what a retry asked for and got.
package main

import (
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

var (
	target   = flag.String("target", "", "upstream registry, http://host:port")
	portFile = flag.String("port-file", "", "write the chosen port here")
	cut      = flag.Int64("cut", -1, "cut the first blob GET after this many body bytes")
	failN    = flag.Int("fail", 0, "answer the first K blob GETs with 503 and Retry-After: 1")
	corrupt  = flag.Bool("corrupt", false, "flip the first byte of every blob body")
	mu       sync.Mutex
	cutDone  bool
	failed   int
)

var hop = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Upgrade": true, "Te": true, "Trailer": true}

func main() {
	flag.Parse()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		blob := r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
		rng := r.Header.Get("Range")
		mu.Lock()
		doFail := blob && failed < *failN
		if doFail {
			failed++
		}
		doCut := blob && !cutDone && *cut >= 0
		if doCut {
			cutDone = true
		}
		mu.Unlock()
		if doFail {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			fmt.Printf("%s %s range=%s status=503 bytes=0\n", r.Method, r.URL.Path, rng)
			return
		}
		out, _ := http.NewRequest(r.Method, *target+r.URL.RequestURI(), r.Body)
		if r.Body == http.NoBody || r.ContentLength == 0 {
			out.Body = nil
		}
		out.ContentLength = r.ContentLength
		for k, v := range r.Header {
			if !hop[k] {
				out.Header[k] = v
			}
		}
		out.Host = r.Host
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			if !hop[k] {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		var n int64
		if doCut {
			n, _ = io.CopyN(w, resp.Body, *cut)
			w.(http.Flusher).Flush()
			fmt.Printf("%s %s range=%s status=%d bytes=%d cut\n", r.Method, r.URL.Path, rng,
				resp.StatusCode, n)
			panic(http.ErrAbortHandler) // drops the connection mid-body
		}
		if blob && *corrupt && resp.StatusCode/100 == 2 {
			body, _ := ioutil.ReadAll(resp.Body)
			if len(body) > 0 {
				body[0] ^= 0xff
			}
			m, _ := w.Write(body)
			n = int64(m)
		} else {
			n, _ = io.Copy(w, resp.Body)
		}
		fmt.Printf("%s %s range=%s status=%d bytes=%d\n", r.Method, r.URL.Path, rng, resp.StatusCode, n)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if *portFile != "" {
		port := l.Addr().(*net.TCPAddr).Port
		ioutil.WriteFile(*portFile+".tmp", []byte(fmt.Sprintf("%d\n", port)), 0o644)
		os.Rename(*portFile+".tmp", *portFile)
	}
	log.Fatal(http.Serve(l, nil))
}
