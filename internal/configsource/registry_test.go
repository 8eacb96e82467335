package configsource

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	r, err := Parse("registry://127.0.0.1:8848/public/STRATA/edge.yaml", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.base != "http://127.0.0.1:8848" || r.namespace != "" || r.group != "STRATA" || r.dataID != "edge.yaml" {
		t.Errorf("parsed %+v", r)
	}
	r, err = Parse("registry://h:1/prod//app", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.namespace != "prod" || r.group != "DEFAULT_GROUP" {
		t.Errorf("namespace %q group %q", r.namespace, r.group)
	}
	for uri, want := range map[string]string{
		"http://h:1/a/b/c":          "scheme",
		"registry://h/a/b/c":        "HOST:PORT",
		"registry://h:1/a/b":        "/NAMESPACE/GROUP/DATAID",
		"registry://h:1/a/b/":       "/NAMESPACE/GROUP/DATAID",
		"registry://h:1/a/b/c/d":    "/NAMESPACE/GROUP/DATAID",
		"registry://u:p@h:1/a/b/c":  "token",
		"registry://h:1/a/b/c?x=1":  "query",
		"registry://h:1/a/b/c#frag": "fragment",
	} {
		_, err := Parse(uri, "", nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error about %s", uri, err, want)
		}
	}
}
