package config

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadSecretFile reads a secret (a token, a password, a TSIG key, a TLS
// private key) from a file, the `…_file` twin of a secret field. Keeping
// secrets in files lets them stay out of the config file, out of the
// process's arguments and out of version control.
//
// A file that every user of the machine may read (mode & 0o004) is refused:
// such a secret is not one, and refusing it at start-up is the only moment
// the operator is sure to notice. Surrounding white space, such as the
// newline an editor or `echo` adds, is trimmed; an empty secret is an error.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("reading secret file %s: is a directory", path)
	}
	if mode := st.Mode().Perm(); mode&0o004 != 0 {
		return "", fmt.Errorf("reading secret file %s: it is world-readable (mode %04o); chmod o-r it", path, mode)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("reading secret file %s: it is empty", path)
	}
	return s, nil
}
