// Package webguard keeps pages of other sites from reading driftd's HTTP endpoints
// through a browser on this host. Such a page cannot read a cross-origin answer, but
// after DNS rebinding its own name points at 127.0.0.1 and its requests are same-origin
// to the browser; they still name its host, which is what these checks refuse. It also
// keeps clients on other hosts from reading what the pages show without a password.
package webguard

import (
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
// be a bare host name, as browsers send it without the port, so "driftd.internal:9464",
// "http://driftd.internal" or "*.internal" are refused rather than silently useless.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("an empty name")
	}
	if strings.ContainsAny(name, ":/*[] ") {
		return fmt.Errorf("%q is not a bare host name (no scheme, port, path or wildcard)", name)
	}
	if net.ParseIP(name) != nil {
		return fmt.Errorf("%q is an IP address, which is always allowed", name)
	}
	return nil
}

// Password guards h against clients on other hosts: a loopback client is served; another
// gets 403 when password is empty (the pages then answer this host only) and must give
// user and password by basic authentication otherwise. The address is the connection's:
// behind a proxy every client is the proxy's host, so a proxy needs the password too.
func Password(h http.Handler, user, password, setting string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			h.ServeHTTP(w, r)
			return
		}
		if password == "" {
			http.Error(w, fmt.Sprintf("these pages answer clients on this host only: set %s to reach them from others", setting), http.StatusForbidden)
			return
		}
		u, p, ok := r.BasicAuth()
		// Both compared in constant time, so that the time taken says nothing of either.
		uok := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		pok := subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
		if !ok || !uok || !pok {
			w.Header().Set("WWW-Authenticate", `Basic realm="driftd", charset="UTF-8"`)
			http.Error(w, "a user and password are required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
