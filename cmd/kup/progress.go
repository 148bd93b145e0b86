package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/kup-project/kup/internal/apply"
	"github.com/kup-project/kup/internal/rollout"
)

// isTerminal reports whether w is a terminal (progress redraws only there).
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// useColor: colour only on a terminal, never with NO_COLOR.
func useColor(w io.Writer, noColor bool) bool {
	return !noColor && os.Getenv("NO_COLOR") == "" && isTTY(w)
}

// liveProgress draws apply's progress on a terminal: permanent lines for
// what matters (phases, hops, waves, failures), and below them a block
// redrawn in place — phase, a bar of nodes done, the nodes of the wave in
// flight with their step and what they wait on, and an ETA.
type liveProgress struct {
	w        io.Writer
	color    bool
	mu       sync.Mutex
	target   string
	phase    string
	started  time.Time
	nodesAt  time.Time
	total    int
	done     int
	wave     int
	limit    string
	inFlight map[string]string // node → step / waiting reason
	drawn    int               // lines of the live block on screen
	lastDraw time.Time
}

func newLiveProgress(w io.Writer, target string, color bool) *liveProgress {
	return &liveProgress{w: w, color: color, target: target, started: time.Now(), inFlight: map[string]string{}}
}

func (p *liveProgress) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Event takes one apply event.
func (p *liveProgress) Event(e apply.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	permanent := ""
	switch {
	case e.Phase != p.phase && e.Step == "":
		p.phase = e.Phase
		if e.Phase == "nodes" && p.nodesAt.IsZero() {
			p.nodesAt = time.Now()
		}
		permanent = p.paint("1", "▸ "+e.Message)
	case e.Step == rollout.StepWave && e.Node == "":
		if n, ok := parseTotal(e.Message); ok {
			p.total += n
		}
		if strings.HasPrefix(e.Message, "wave ") {
			p.wave = e.Wave
			if i := strings.Index(e.Message, "limited by "); i >= 0 {
				p.limit = e.Message[i+len("limited by "):]
			}
		}
		permanent = "  " + e.Message
	case e.Node != "" && e.Step == rollout.StepDone:
		p.done++
		delete(p.inFlight, e.Node)
	case e.Node != "" && e.Step == rollout.StepFailed:
		delete(p.inFlight, e.Node)
		permanent = p.paint("31", "  ✗ "+e.Node+": "+e.Message)
	case e.Node != "" && e.Step == rollout.StepWaiting:
		p.inFlight[e.Node] = "waiting: " + e.Message
	case e.Node != "":
		p.inFlight[e.Node] = e.Step
	case e.Step == rollout.StepFailed || e.Step == rollout.StepGate && strings.Contains(e.Message, "passed") == false && strings.Contains(e.Message, "soak") == false:
		if e.Step == rollout.StepFailed {
			permanent = p.paint("31", "  ✗ "+e.Message)
		}
	default:
		if e.Node == "" && e.Step == "" {
			permanent = "  " + e.Message
		}
	}
	if permanent == "" && time.Since(p.lastDraw) < 150*time.Millisecond {
		return
	}
	p.clear()
	if permanent != "" {
		fmt.Fprintf(p.w, "%s %s\n", time.Now().Format("15:04:05"), permanent)
	}
	p.draw()
}

func parseTotal(msg string) (int, bool) {
	var n int
	if _, err := fmt.Sscanf(msg, "%d node(s) to roll", &n); err == nil {
		return n, true
	}
	return 0, false
}

func (p *liveProgress) clear() {
	for i := 0; i < p.drawn; i++ {
		fmt.Fprint(p.w, "\x1b[1A\x1b[2K")
	}
	p.drawn = 0
}

func (p *liveProgress) draw() {
	p.lastDraw = time.Now()
	var lines []string
	elapsed := time.Since(p.started).Round(time.Second)
	head := fmt.Sprintf("kup apply → %s   phase %s   elapsed %s", p.target, p.phase, elapsed)
	if p.total > 0 && p.done > 0 && p.done < p.total && !p.nodesAt.IsZero() {
		per := time.Since(p.nodesAt) / time.Duration(p.done)
		head += fmt.Sprintf("   ETA ~%s", (per * time.Duration(p.total-p.done)).Round(time.Second))
	}
	lines = append(lines, p.paint("1", head))
	if p.total > 0 {
		const width = 30
		filled := min(width, p.done*width/max(p.total, 1))
		bar := p.paint("32", strings.Repeat("█", filled)) + strings.Repeat("░", width-filled)
		line := fmt.Sprintf("nodes %s %d/%d", bar, p.done, p.total)
		if p.wave > 0 {
			line += fmt.Sprintf("   wave %d", p.wave)
			if p.limit != "" {
				line += " (limited by " + p.limit + ")"
			}
		}
		lines = append(lines, line)
	}
	names := make([]string, 0, len(p.inFlight))
	for n := range p.inFlight {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if i == 8 {
			lines = append(lines, fmt.Sprintf("  … and %d more", len(names)-8))
			break
		}
		lines = append(lines, fmt.Sprintf("  %-14s %s", n, truncate(p.inFlight[n], 100)))
	}
	for _, l := range lines {
		fmt.Fprintln(p.w, l)
	}
	p.drawn = len(lines)
}

// Close removes the live block, leaving the permanent lines.
func (p *liveProgress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
