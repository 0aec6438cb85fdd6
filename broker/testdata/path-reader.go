// Reads request targets the way Go's net/http does before routing: url.ParseRequestURI (what the
// server's request parser calls), then ServeMux's cleanPath (path.Clean, trailing slash kept).
// Input: a JSON array of request targets on stdin. Output: a JSON array of the decoded, cleaned
// paths (null where net/http would refuse the target). Used by broker/path.differential.test.ts.
package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path"
	"strings"
)

func read(target string) *string {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	cleaned := path.Clean(p)
	if strings.HasSuffix(p, "/") && cleaned != "/" {
		cleaned += "/"
	}
	return &cleaned
}

func main() {
	var targets []string
	if err := json.NewDecoder(os.Stdin).Decode(&targets); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(2)
	}
	out := make([]*string, len(targets))
	for i, t := range targets {
		out[i] = read(t)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(2)
	}
}
