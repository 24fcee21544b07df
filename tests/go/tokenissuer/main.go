// SPDX-License-Identifier: Apache-2.0

// tokenissuer is a minimal token server for the distribution registry's `auth: token` mode, for
// tests/scripts/registry_client.sh. Standard library only (Go 1.19): RS256 JWTs by hand, signed with the
// key whose certificate goes in the x5c header (the registry verifies it against its rootcertbundle).
//
// GET /token?service=S&scope=repository:NAME:ACTIONS... with Basic credentials, or POST /token with the
// OAuth2 form (grant_type=password with username/password, or refresh_token). Valid credentials get the
// actions asked for; anonymous requests get pull on repositories under public/ only; wrong credentials
// get 401. Every request is logged as one line on stdout ("GET user=alice scopes=... granted=...").
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

var (
	addr     = flag.String("addr", "127.0.0.1:0", "listen address")
	portFile = flag.String("port-file", "", "write the chosen port here")
	keyFile  = flag.String("key", "", "signing key (PEM, PKCS#8 or PKCS#1)")
	certFile = flag.String("cert", "", "signing certificate (PEM)")
	issuer   = flag.String("issuer", "berth-test-issuer", "iss claim")
	user     = flag.String("user", "alice", "username")
	pass     = flag.String("pass", "secret", "password")
	refresh  = flag.String("refresh", "identity-token", "refresh token accepted by the POST form")
	noPost   = flag.Bool("no-post", false, "answer POST with 404 (clients fall back to GET); a realm "+
		"with ?nopost=1 does the same per request")
)

type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func loadKey() (*rsa.PrivateKey, []byte) {
	kb, err := ioutil.ReadFile(*keyFile)
	if err != nil {
		log.Fatal(err)
	}
	kp, _ := pem.Decode(kb)
	if kp == nil {
		log.Fatal("no PEM key")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS8PrivateKey(kp.Bytes); err == nil {
		key = k.(*rsa.PrivateKey)
	} else if key, err = x509.ParsePKCS1PrivateKey(kp.Bytes); err != nil {
		log.Fatal(err)
	}
	cb, err := ioutil.ReadFile(*certFile)
	if err != nil {
		log.Fatal(err)
	}
	cp, _ := pem.Decode(cb)
	if cp == nil {
		log.Fatal("no PEM certificate")
	}
	return key, cp.Bytes
}

func grant(scopes []string, authed bool) []access {
	out := []access{}
	for _, s := range scopes {
		for _, one := range strings.Fields(s) {
			parts := strings.Split(one, ":")
			if len(parts) < 3 || parts[0] != "repository" {
				continue
			}
			name := strings.Join(parts[1:len(parts)-1], ":")
			var acts []string
			for _, a := range strings.Split(parts[len(parts)-1], ",") {
				if authed || (a == "pull" && strings.HasPrefix(name, "public/")) {
					acts = append(acts, a)
				}
			}
			if len(acts) > 0 {
				out = append(out, access{"repository", name, acts})
			}
		}
	}
	return out
}

func sign(key *rsa.PrivateKey, der []byte, service, subject string, acc []access) string {
	hdr, _ := json.Marshal(map[string]interface{}{
		"typ": "JWT", "alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(der)},
	})
	now := time.Now()
	jti := make([]byte, 8)
	rand.Read(jti)
	claims, _ := json.Marshal(map[string]interface{}{
		"iss": *issuer, "sub": subject, "aud": service, "exp": now.Add(5 * time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(), "jti": fmt.Sprintf("%x", jti),
		"access": acc,
	})
	input := b64(hdr) + "." + b64(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		log.Fatal(err)
	}
	return input + "." + b64(sig)
}

func main() {
	flag.Parse()
	key, der := loadKey()
	http.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		var scopes []string
		var service, who string
		authed, bad := false, false
		switch r.Method {
		case http.MethodGet:
			q := r.URL.Query()
			scopes, service = q["scope"], q.Get("service")
			if u, p, ok := r.BasicAuth(); ok {
				who = u
				authed = u == *user && p == *pass
				bad = !authed
			}
		case http.MethodPost:
			if *noPost || r.URL.Query().Get("nopost") != "" {
				fmt.Printf("POST refused\n")
				http.NotFound(w, r)
				return
			}
			r.ParseForm()
			scopes, service = r.PostForm["scope"], r.PostForm.Get("service")
			switch r.PostForm.Get("grant_type") {
			case "password":
				who = r.PostForm.Get("username")
				authed = who == *user && r.PostForm.Get("password") == *pass
			case "refresh_token":
				who = "refresh"
				authed = r.PostForm.Get("refresh_token") == *refresh
			}
			bad = !authed
		default:
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		if bad {
			fmt.Printf("%s user=%s denied\n", r.Method, who)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, 401)
			return
		}
		acc := grant(scopes, authed)
		fmt.Printf("%s user=%s scopes=%s granted=%v\n", r.Method, who, strings.Join(scopes, "|"), acc)
		tok := sign(key, der, service, who, acc)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"token": tok, "access_token": tok, "expires_in": 300,
			"issued_at": time.Now().UTC().Format(time.RFC3339),
		})
	})
	l, err := net.Listen("tcp", *addr)
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
