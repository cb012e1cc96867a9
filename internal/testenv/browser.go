package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts a headless Chromium (CHROMIUM_PATH, which scripts/chromium.sh finds or
// installs and make test sets) for page tests, and returns a context to drive it with
// chromedp within parent; it is closed when the test ends. A test that needs it fails
// without it: it does not skip.
func Browser(t testing.TB, parent context.Context) context.Context {
	t.Helper()
	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		t.Fatal("CHROMIUM_PATH is not set: find or install Chromium with scripts/chromium.sh (make test does)")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("CHROMIUM_PATH %s: %v", path, err)
	}
	// The flags keep Chromium off the network it would otherwise reach for at start
	// (updates, sync, Google's hosts): this machine refuses those connections.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return ctx
}

// ScreenshotDir is the folder the test's screenshots go to, named by the test, under the
// repository's .cache/screenshots (kept between runs, not committed).
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".cache", "screenshots", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
