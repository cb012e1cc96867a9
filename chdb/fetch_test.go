package chdb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakePackage(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{"package/package.json": "{}", "package/libchdb.so": "not really a library"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// A package whose bytes differ from the pinned integrity is refused and nothing is
// installed; extraction itself finds the library in a package.
func TestFetchVerifiesIntegrity(t *testing.T) {
	pkg := fakePackage(t)
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.Write(pkg)
	}))
	defer srv.Close()
	t.Setenv("NPM_CONFIG_REGISTRY", srv.URL)
	dir := t.TempDir()
	var progress bytes.Buffer
	_, err := Fetch(context.Background(), dir, &progress)
	if err == nil || !strings.Contains(err.Error(), "integrity mismatch") {
		t.Fatalf("err = %v", err)
	}
	if path != "/@chdb/lib-linux-x64-gnu/-/lib-linux-x64-gnu-"+PinnedVersion+".tgz" || !strings.Contains(progress.String(), "100%") {
		t.Errorf("path %q, progress %q", path, progress.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "package", "libchdb.so")); err == nil {
		t.Error("an unverified library was installed")
	}
	dest := filepath.Join(dir, "lib.so")
	if err := extract(bytes.NewReader(pkg), "package/libchdb.so", dest); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "not really a library" {
		t.Errorf("extracted %q", b)
	}
}
