package client

import (
	"io"
	"log/slog"
	"reflect"
	"testing"
)

// TestWriteCacheKeepsItsInput: the list written to the cache is the one
// subscribers were handed; sorting it for the file must not reorder
// theirs underneath them.
func TestWriteCacheKeepsItsInput(t *testing.T) {
	c, err := New(Config{Servers: []string{"127.0.0.1:1"}, CacheDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ins := []Instance{{IP: "127.0.0.3", Port: 80}, {IP: "127.0.0.1", Port: 80}, {IP: "127.0.0.2", Port: 80}}
	given := append([]Instance(nil), ins...)
	c.writeCache("svc", ins)
	if !reflect.DeepEqual(ins, given) {
		t.Fatalf("writeCache reordered its input: %v, was %v", ins, given)
	}
	got, ok := c.readCache("svc")
	if !ok || len(got) != 3 || got[0].IP != "127.0.0.1" || got[2].IP != "127.0.0.3" {
		t.Fatalf("cache holds %v (%v), want the three instances sorted by address", got, ok)
	}
}
