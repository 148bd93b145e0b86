package checks

import "strings"

// ProviderFinding is the finding of a readiness check a provider runs
// itself (EKS's upgrade insights) that kup has no check of its own for:
// a blocker when it fails for the next hop, else a warning. title,
// message and action are the provider's own words.
func ProviderFinding(blocking bool, title, message, action string, objects ...Object) Finding {
	id := ProviderWarning
	if blocking {
		id = ProviderBlocker
	}
	f := found(id, message, objects...)
	if title != "" {
		f.Title = title
	}
	if action != "" {
		f.Action = action
	}
	return f
}

// ProviderUnknown says the provider's readiness checks could not be read.
func ProviderUnknown(why string) Finding { return unknown(ProviderBlocker, why) }

// worse returns the more serious of two severities (blocker, warning,
// unknown, info).
func worse(a, b Severity) Severity {
	if b.rank() < a.rank() {
		return b
	}
	return a
}

// Merge folds a provider's findings into kup's own. Where the provider
// reports a check kup also ran (same ID), the two become one finding:
// kup's, with the provider's message and recommendation added and the
// worse severity of the two — both voices kept, counted once. The others
// are added as they are. The result is sorted.
func Merge(own, fromProvider []Finding) []Finding {
	out := append([]Finding(nil), own...)
	for _, p := range fromProvider {
		i := -1
		for j := range out {
			if out[j].ID == p.ID && out[j].Severity != Unknown {
				i = j
				break
			}
		}
		if i < 0 {
			out = append(out, p)
			continue
		}
		f := &out[i]
		f.Severity = worse(f.Severity, p.Severity)
		f.Message = strings.TrimSpace(f.Message + " " + p.Message)
		if p.Action != "" && !strings.Contains(f.Action, p.Action) {
			f.Action = strings.TrimSpace(f.Action + " " + p.Action)
		}
		f.Objects = append(f.Objects, p.Objects...)
	}
	Sort(out)
	return out
}
