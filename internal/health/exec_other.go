//go:build !unix

package health

import "os/exec"

// killGroupOnCancel leaves the default: cancellation kills only the
// command itself, since process groups are a Unix notion.
func killGroupOnCancel(*exec.Cmd) {}
