package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestReadmeDescribe checks that the README's `topology describe` sample is
// what the command prints for the demo topologies. Regression: the sample
// lacked source.truncate, which describe prints since the option exists.
func TestReadmeDescribe(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "```\ntopology contacts-erp-to-crm (")
	if start < 0 {
		t.Fatal("README.md has no `topology describe` sample for contacts-erp-to-crm")
	}
	sample := readme[start+4:]
	sample = sample[:strings.Index(sample, "```")]
	stdout, stderr, err := run(t, "", "topology", "describe", "../../internal/demo/topologies")
	wantExit(t, err, 0)
	got := strings.ReplaceAll(stdout, "../../internal/", "internal/")
	if !strings.Contains(got, sample) {
		t.Errorf("README.md's describe sample:\n%s\nis not in what describe prints:\n%s%s", sample, stdout, stderr)
	}
}

// TestReadmeCommands checks that the README's command list is the usage
// text's, which the commands table makes. Regression: the usage lacked
// `schemas check` and decode's --topic and --connector, which the README
// listed.
func TestReadmeCommands(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	start := strings.Index(readme, "## Commands\n\n```\n")
	if start < 0 {
		t.Fatal("README.md has no command list under ## Commands")
	}
	list := readme[start+len("## Commands\n\n```\n"):]
	list = list[:strings.Index(list, "```")]
	if want := commandList(); list != want {
		t.Errorf("README.md lists:\n%s\nthe usage text says:\n%s", list, want)
	}
}

// maxReadme is the README's size limit (issue 13): the pitch, the picture,
// the two set-up commands, the command list and links; references go in
// docs/.
const maxReadme = 15 * 1024

// TestReadmeSize keeps the README short. Regression: it had grown to
// 66 KB, holding references that contradicted the code.
func TestReadmeSize(t *testing.T) {
	fi, err := os.Stat("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxReadme {
		t.Errorf("README.md is %d bytes, over the %d-byte limit: move reference material to docs/", fi.Size(), maxReadme)
	}
}

// mdLink matches an inline Markdown link's target: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocLinks checks that every relative link in the README, in
// deploy/README.md and in the docs/ pages names a file or directory of
// the repository, and that a #fragment into a Markdown file names one of
// its headings (GitHub's anchors). Regression: moving references out of
// the README left links to sections that no longer existed.
func TestDocLinks(t *testing.T) {
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, "../../README.md", "../../deploy/README.md")
	docsLinks := 0
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(page, "../../")
		for _, m := range mdLink.FindAllStringSubmatch(stripCode(string(data)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				file = filepath.Join(filepath.Dir(page), path)
			}
			if name == "README.md" && strings.HasPrefix(path, "docs/") {
				docsLinks++
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: link %s: %s does not exist", name, target, strings.TrimPrefix(file, "../../"))
				continue
			}
			if frag == "" || !strings.HasSuffix(file, ".md") {
				continue
			}
			if !slices.Contains(anchors(t, file), frag) {
				t.Errorf("%s: link %s: %s has no heading with the anchor #%s", name, target, strings.TrimPrefix(file, "../../"), frag)
			}
		}
	}
	if docsLinks < 10 {
		t.Errorf("README.md links to docs/ only %d times; the test found too few links to check", docsLinks)
	}
}

// stripCode removes fenced code blocks and inline code, where brackets
// are not links.
func stripCode(s string) string {
	var b strings.Builder
	fenced := false
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		parts := strings.Split(l, "`")
		for i := 0; i < len(parts); i += 2 {
			b.WriteString(parts[i])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// anchors returns the GitHub anchors of a Markdown file's headings:
// lower case, punctuation other than - and _ removed, spaces to -, and
// -1, -2, … for repeated headings.
func anchors(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var out []string
	fenced := false
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", a, n))
		} else {
			out = append(out, a)
		}
		seen[a]++
	}
	return out
}
