package webguard

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHostAllowed(t *testing.T) {
	allowed := []string{"driftd.internal"}
	for _, c := range []struct {
		host string
		want bool
	}{
		{"", true},
		{"127.0.0.1:9464", true},
		{"[::1]:9464", true},
		{"10.1.2.3", true},
		{"localhost:9464", true},
		{"LOCALHOST.", true},
		{"app.localhost:9464", true},
		{"driftd.internal:9464", true},
		{"DRIFTD.internal.", true},
		{"evil.example:9464", false},
		{"localhost.evil.example", false},
		{"driftd.internal.evil.example", false},
	} {
		if got := HostAllowed(c.host, allowed); got != c.want {
			t.Errorf("HostAllowed(%q) = %v, want %v", c.host, got, c.want)
		}
	}
}

// A page whose name was rebound to this host is refused; a name the setting lists and an
// address are served.
func TestHosts(t *testing.T) {
	h := Hosts(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) }), []string{"driftd.internal"}, "http.allowed_hosts")
	for host, want := range map[string]int{"127.0.0.1:9464": 200, "driftd.internal:9464": 200, "rebind.evil.example:9464": http.StatusMisdirectedRequest} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("Host %s: %d %s, want %d", host, rec.Code, rec.Body.String(), want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"driftd.internal": true, "ch": true, "driftd.internal.": true, "xn--bcher-kva.example": true,
		"10.0.0.1": true, "::1": true, // always allowed anyway: harmless
		"": false, ".": false, "a..b": false, "driftd.internal:9464": false, "http://driftd.internal": false, "*.internal": false,
		"bücher.example": false, "user@host": false, "host?x": false, "ho%st": false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// The pages answer loopback clients; others only with the password, and not at all
// without one.
func TestPassword(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) })
	for _, c := range []struct {
		name, password, remote, user, pass string
		basic                              bool
		want                               int
	}{
		{"loopback, no password set", "", "127.0.0.1:5000", "", "", false, 200},
		{"IPv6 loopback", "", "[::1]:5000", "", "", false, 200},
		{"another host, no password set", "", "10.0.0.7:5000", "driftd", "", true, http.StatusForbidden},
		{"another host without credentials", "s3cret", "10.0.0.7:5000", "", "", false, http.StatusUnauthorized},
		{"another host, wrong password", "s3cret", "10.0.0.7:5000", "driftd", "guess", true, http.StatusUnauthorized},
		{"another host, wrong user", "s3cret", "10.0.0.7:5000", "admin", "s3cret", true, http.StatusUnauthorized},
		{"another host with the password", "s3cret", "10.0.0.7:5000", "driftd", "s3cret", true, 200},
		{"IPv4-mapped loopback", "", "[::ffff:127.0.0.1]:5000", "", "", false, 200},
		{"no port", "", "127.0.0.1", "", "", false, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = c.remote
			if c.basic {
				r.SetBasicAuth(c.user, c.pass)
			}
			rec := httptest.NewRecorder()
			Password(page, "driftd", c.password, "http.password").ServeHTTP(rec, r)
			if rec.Code != c.want {
				t.Errorf("%d, want %d: %s", rec.Code, c.want, rec.Body)
			}
			if c.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate challenge")
			}
		})
	}
}

// A proxy on this host forwards other hosts' requests from a loopback address: they need
// the password all the same.
func TestPasswordBehindALocalProxy(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) })
	for _, header := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "127.0.0.1:5000"
		r.Header.Set(header, "203.0.113.9")
		rec := httptest.NewRecorder()
		Password(page, "driftd", "", "http.password").ServeHTTP(rec, r)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", header, rec.Code)
		}
		r.SetBasicAuth("driftd", "s3cret")
		rec = httptest.NewRecorder()
		Password(page, "driftd", "s3cret", "http.password").ServeHTTP(rec, r)
		if rec.Code != 200 {
			t.Errorf("%s with the password: %d, want 200", header, rec.Code)
		}
	}
}
