package sshexec

import (
	"regexp"
	"strings"
)

// plainWord needs no quoting in a POSIX shell.
var plainWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// Quote renders one argument for a POSIX shell: as is when it is a plain
// word, else in single quotes (an embedded single quote is closed,
// escaped and reopened). The remote side of an SSH command is always a
// shell, so argv must be quoted to arrive intact: kubeadm=1.37.2-* must
// not glob.
func Quote(arg string) string {
	if arg != "" && plainWord.MatchString(arg) {
		return arg
	}
	return "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
}

// Join quotes every argument and joins them with spaces.
func Join(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
