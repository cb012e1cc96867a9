// Package webguard keeps pages of other sites from reading driftd's HTTP endpoints
// through a browser on this host. Such a page cannot read a cross-origin answer, but
// after DNS rebinding its own name points at 127.0.0.1 and its requests are same-origin
// to the browser; they still name its host, which is what these checks refuse. It also
// keeps clients on other hosts from reading what the pages show without a password.
package webguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// HostAllowed reports whether hostport (a request's Host) names this endpoint: an IP
// address, localhost (browsers resolve it and its subdomains to loopback themselves, RFC
// 6761), or one of allowed. An empty Host (HTTP/1.0) is allowed.
func HostAllowed(hostport string, allowed []string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(host) != nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSuffix(a, "."), host) {
			return true
		}
	}
	return false
}

// Hosts serves h only to plain-HTTP requests whose Host HostAllowed accepts (over TLS a
// rebound name does not match the certificate, so the browser never sends them); others
// get 421 with the setting that lets a name in.
func Hosts(h http.Handler, allowed []string, setting string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil && !HostAllowed(r.Host, allowed) {
			http.Error(w, fmt.Sprintf("host %q is not a name of this endpoint (an IP address, localhost, or a name in %s)", r.Host, setting), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CheckName says why an allowed-hosts entry would never match a request's Host: it must
// be a bare host name in the form browsers send it (ASCII, the punycode form of an
// internationalised name, without the port), so "driftd.internal:9464",
// "http://driftd.internal", "*.internal" or "bücher.example" are refused rather than
// silently useless. An IP address is accepted: it is always allowed anyway.
func CheckName(name string) error {
	if net.ParseIP(strings.Trim(name, "[]")) != nil {
		return nil
	}
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return fmt.Errorf("%q is not a host name", name)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a host name (an empty or overlong label)", name)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a bare host name: %q is not allowed (no scheme, port, path or wildcard; an internationalised name in its xn-- form)", name, c)
			}
		}
	}
	return nil
}

// Password guards h against clients on other hosts: a loopback client is served; another
// gets 403 when password is empty (the pages then answer this host only) and must give
// user and password by basic authentication otherwise. A request that a proxy forwarded
// (it says so in Forwarded, X-Forwarded-For or X-Real-IP) counts as from another host
// even when the proxy runs on this one, so a proxy in front of the pages needs the
// password too.
func Password(h http.Handler, user, password, setting string) http.Handler {
	// Digests compared in constant time: neither the values nor their lengths show in
	// how long a refusal takes.
	wantUser, wantPassword := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopback(r) {
			h.ServeHTTP(w, r)
			return
		}
		if password == "" {
			http.Error(w, fmt.Sprintf("these pages answer clients on this host only: set %s to reach them from others", setting), http.StatusForbidden)
			return
		}
		u, p, ok := r.BasicAuth()
		gotUser, gotPassword := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		uok := subtle.ConstantTimeCompare(gotUser[:], wantUser[:]) == 1
		pok := subtle.ConstantTimeCompare(gotPassword[:], wantPassword[:]) == 1
		if !ok || !uok || !pok {
			w.Header().Set("WWW-Authenticate", `Basic realm="driftd", charset="UTF-8"`)
			http.Error(w, "a user and password are required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// loopback says whether r comes from this host itself, not through a proxy.
func loopback(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
