package chdb

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The engine driftd is tested with: npm package @chdb/lib-linux-x64-gnu (ClickHouse
// 26.5.1), verified against the integrity the registry publishes for it.
const (
	PinnedVersion   = "26.5.3"
	pinnedIntegrity = "sha512-fPrLmRt5Moor9yGz4mazbrNje4t7X9KB2mTGkXFWRxRBs2iKy8yh6jx11xsa0Qr3iDFMU/yHqd+bVdYJXu3QaQ=="
	packageName     = "@chdb/lib-linux-x64-gnu"
)

// DefaultCacheDir is where Fetch keeps the library when no folder is given.
func DefaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "driftd", "chdb")
	}
	return filepath.Join(".cache", "chdb")
}

// Fetch downloads libchdb.so at the pinned version from the npm registry
// ($NPM_CONFIG_REGISTRY or registry.npmjs.org) into cacheDir/package, checks it against
// the pinned integrity, and returns its path. A library already there is reused.
// progress, if not nil, receives a one-line progress bar.
func Fetch(ctx context.Context, cacheDir string, progress io.Writer) (string, error) {
	lib := filepath.Join(cacheDir, "package", "libchdb.so")
	if v, err := os.ReadFile(filepath.Join(cacheDir, "version")); err == nil && strings.TrimSpace(string(v)) == PinnedVersion {
		if _, err := os.Stat(lib); err == nil {
			return lib, nil
		}
	}
	registry := strings.TrimRight(os.Getenv("NPM_CONFIG_REGISTRY"), "/")
	if registry == "" {
		registry = "https://registry.npmjs.org"
	}
	url := fmt.Sprintf("%s/%s/-/lib-linux-x64-gnu-%s.tgz", registry, packageName, PinnedVersion)
	if err := os.MkdirAll(filepath.Join(cacheDir, "package"), 0o755); err != nil {
		return "", fmt.Errorf("fetch libchdb.so: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("fetch libchdb.so: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch libchdb.so from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch libchdb.so from %s: HTTP %d", url, resp.StatusCode)
	}
	tgz, err := os.CreateTemp(cacheDir, "chdb-*.tgz")
	if err != nil {
		return "", fmt.Errorf("fetch libchdb.so: %w", err)
	}
	defer os.Remove(tgz.Name())
	defer tgz.Close()
	h := sha512.New()
	body := io.TeeReader(resp.Body, h)
	if progress != nil {
		body = &progressReader{r: body, total: resp.ContentLength, w: progress, label: "fetching " + packageName + "@" + PinnedVersion}
	}
	if _, err := io.Copy(tgz, body); err != nil {
		return "", fmt.Errorf("fetch libchdb.so from %s: %w", url, err)
	}
	if progress != nil {
		fmt.Fprintln(progress)
	}
	if got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)); got != pinnedIntegrity {
		return "", fmt.Errorf("fetch libchdb.so: integrity mismatch for %s: got %s, want %s", url, got, pinnedIntegrity)
	}
	if _, err := tgz.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := extract(tgz, "package/libchdb.so", lib); err != nil {
		return "", fmt.Errorf("fetch libchdb.so: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cacheDir, "version"), []byte(PinnedVersion+"\n"), 0o644); err != nil {
		return "", err
	}
	return lib, nil
}

func extract(r io.Reader, name, dest string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("read package: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("package has no %s", name)
		}
		if err != nil {
			return fmt.Errorf("read package: %w", err)
		}
		if hdr.Name != name {
			continue
		}
		tmp := dest + ".tmp"
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, dest)
	}
}

type progressReader struct {
	r        io.Reader
	w        io.Writer
	label    string
	total    int64
	read     int64
	lastDraw time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	if time.Since(p.lastDraw) > 200*time.Millisecond || err != nil {
		p.lastDraw = time.Now()
		if p.total > 0 {
			pct := float64(p.read) / float64(p.total)
			bar := strings.Repeat("█", int(pct*30)) + strings.Repeat("░", 30-int(pct*30))
			fmt.Fprintf(p.w, "\r%s %s %3.0f%% (%d/%d MB)", p.label, bar, 100*pct, p.read>>20, p.total>>20)
		} else {
			fmt.Fprintf(p.w, "\r%s %d MB", p.label, p.read>>20)
		}
	}
	return n, err
}
