// SPDX-License-Identifier: Apache-2.0

// cutproxy is an HTTP proxy in front of a registry that misbehaves on blob downloads, for
// tests/scripts/registry_client.sh. Standard library only (Go 1.19).
//
//	-cut N      the first blob GET answer longer than N bytes is cut (connection dropped) after N
//	-fail K     the first K blob GETs answer 503 with Retry-After: 1
//	-corrupt    every blob body has its first byte flipped (the digest no longer matches)
//	-norange    blob requests reach the registry without their Range header (it answers 200, whole)
//	-nodigest   manifest HEAD answers lose their Docker-Content-Digest header
//	-strip P -with W  a request path starting with P has P replaced by W (a mirror's path prefix)
//	-redirect   blob GETs are redirected (307) to http://localhost:PORT/_r/..., another host name for
//	            the client; the proxy logs whether that request carried an Authorization header and
//	            serves it with the one the first request had
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
	noRange  = flag.Bool("norange", false, "drop the Range header of blob requests")
	noDigest = flag.Bool("nodigest", false, "drop Docker-Content-Digest from manifest HEAD answers")
	redirect = flag.Bool("redirect", false, "redirect blob GETs to localhost:PORT/_r/")
	strip    = flag.String("strip", "", "path prefix to replace (see -with)")
	with     = flag.String("with", "", "what replaces the -strip prefix")
	mu       sync.Mutex
	cutDone  bool
	failed   int
	port     int
	saved    = map[string]string{}
	nextID   int
)

func yesNo(s string) string {
	if s != "" {
		return "yes"
	}
	return "no"
}

var hop = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Upgrade": true, "Te": true, "Trailer": true}

func main() {
	flag.Parse()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if *strip != "" {
			if !strings.HasPrefix(path, *strip+"/") {
				fmt.Printf("%s %s outside the prefix status=404\n", r.Method, path)
				http.NotFound(w, r)
				return
			}
			path = *with + strings.TrimPrefix(path, *strip)
		}
		blob := r.Method == http.MethodGet && strings.Contains(path, "/blobs/sha256:")
		rng := r.Header.Get("Range")
		auth := r.Header.Get("Authorization")
		if strings.HasPrefix(path, "/_r/") {
			path = strings.TrimPrefix(path, "/_r")
			mu.Lock()
			auth = saved[r.URL.Query().Get("id")]
			mu.Unlock()
			fmt.Printf("REDIRECTED %s auth=%s\n", path, yesNo(r.Header.Get("Authorization")))
		} else if blob && *redirect {
			mu.Lock()
			nextID++
			id := fmt.Sprint(nextID)
			saved[id] = auth
			mu.Unlock()
			fmt.Printf("%s %s range=%s status=307 auth=%s\n", r.Method, path, rng, yesNo(auth))
			http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/_r%s?id=%s", port, path, id), 307)
			return
		}
		mu.Lock()
		doFail := blob && failed < *failN
		if doFail {
			failed++
		}
		mu.Unlock()
		if doFail {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			fmt.Printf("%s %s range=%s status=503 bytes=0\n", r.Method, path, rng)
			return
		}
		uri := path
		if q := r.URL.Query(); q.Get("id") == "" && r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
		out, _ := http.NewRequest(r.Method, *target+uri, r.Body)
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
		if auth != "" {
			out.Header.Set("Authorization", auth)
		}
		if blob && *noRange {
			out.Header.Del("Range")
		}
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
		if *noDigest && r.Method == http.MethodHead && strings.Contains(path, "/manifests/") {
			w.Header().Del("Docker-Content-Digest")
		}
		// the first blob answer longer than -cut is cut
		mu.Lock()
		doCut := blob && !cutDone && *cut >= 0 && resp.ContentLength > *cut
		if doCut {
			cutDone = true
		}
		mu.Unlock()
		w.WriteHeader(resp.StatusCode)
		var n int64
		if doCut {
			n, _ = io.CopyN(w, resp.Body, *cut)
			w.(http.Flusher).Flush()
			fmt.Printf("%s %s range=%s status=%d bytes=%d cut\n", r.Method, path, rng,
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
		fmt.Printf("%s %s range=%s status=%d bytes=%d\n", r.Method, path, rng, resp.StatusCode, n)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	if *portFile != "" {
		ioutil.WriteFile(*portFile+".tmp", []byte(fmt.Sprintf("%d\n", port)), 0o644)
		os.Rename(*portFile+".tmp", *portFile)
	}
	log.Fatal(http.Serve(l, nil))
}
