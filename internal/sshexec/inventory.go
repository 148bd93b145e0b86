package sshexec

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Node annotations that say how to reach a node over SSH, for clusters
// that keep this next to the node instead of in an inventory file.
const (
	AnnotationAddress = "kup.dev/ssh-address"
	AnnotationPort    = "kup.dev/ssh-port"
	AnnotationUser    = "kup.dev/ssh-user"
	AnnotationBastion = "kup.dev/ssh-bastion"
)

// DefaultPort is SSH's.
const DefaultPort = 22

// Endpoint is how to reach one host; empty fields fall back (see Resolver).
type Endpoint struct {
	Address string `json:"address,omitempty"`
	Port    int    `json:"port,omitempty"`
	User    string `json:"user,omitempty"`
	// Bastion is the jump host, "[user@]host[:port]" (like ssh -J);
	// "none" turns off a default bastion for this host.
	Bastion string `json:"bastion,omitempty"`
}

// Inventory is the small file that maps node names to SSH endpoints:
//
//	defaults: {user: ubuntu, bastion: jump@bastion.example.com}
//	hosts:
//	  cp-1:     {address: 10.0.0.11}
//	  worker-1: {address: 10.0.1.21, port: 2222}
type Inventory struct {
	Defaults Endpoint            `json:"defaults,omitempty"`
	Hosts    map[string]Endpoint `json:"hosts,omitempty"`
}

// ParseInventory reads an inventory, refusing unknown fields (a typo
// such as "adress" must not silently send kup to the node's own IP).
func ParseInventory(data []byte) (*Inventory, error) {
	var inv Inventory
	if err := yaml.UnmarshalStrict(data, &inv); err != nil {
		return nil, fmt.Errorf("SSH inventory: %w", err)
	}
	if err := inv.Defaults.validate("defaults"); err != nil {
		return nil, err
	}
	for name, ep := range inv.Hosts {
		if name == "" {
			return nil, errors.New("SSH inventory: a host entry has an empty node name")
		}
		if err := ep.validate("host " + name); err != nil {
			return nil, err
		}
	}
	return &inv, nil
}

// LoadInventory reads and parses an inventory file.
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading SSH inventory: %w", err)
	}
	inv, err := ParseInventory(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return inv, nil
}

func (e Endpoint) validate(where string) error {
	if e.Port < 0 || e.Port > 65535 {
		return fmt.Errorf("SSH inventory %s: port %d is out of range 1–65535", where, e.Port)
	}
	if strings.ContainsAny(e.User, "@ \t\n") {
		return fmt.Errorf("SSH inventory %s: user %q must not contain '@' or spaces", where, e.User)
	}
	if strings.ContainsAny(e.Address, "@ \t\n/") {
		return fmt.Errorf("SSH inventory %s: address %q must be a host name or IP address", where, e.Address)
	}
	if e.Bastion != "" && e.Bastion != "none" {
		if _, err := ParseBastion(e.Bastion, "x"); err != nil {
			return fmt.Errorf("SSH inventory %s: %w", where, err)
		}
	}
	return nil
}

// ParseBastion reads "[user@]host[:port]" (IPv6 as "[::1]:22"); the user
// defaults to user.
func ParseBastion(spec, user string) (*Host, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return nil, errors.New("bastion: empty")
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
		if user == "" || strings.ContainsAny(user, "@ \t") {
			return nil, fmt.Errorf("bastion %q: bad user", spec)
		}
	}
	h := &Host{Node: "bastion", User: user, Port: DefaultPort}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a plain name or a bare IPv6 address.
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	} else {
		p, perr := strconv.Atoi(port)
		if perr != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("bastion %q: bad port %q", spec, port)
		}
		h.Port = p
	}
	if host == "" || strings.ContainsAny(host, "@/ \t[]") {
		return nil, fmt.Errorf("bastion %q: bad host %q", spec, host)
	}
	h.Address = host
	return h, nil
}

// Resolver finds the SSH endpoint of a node. Each field is taken from the
// first place that sets it: the inventory's entry for the node, the
// node's kup.dev/ssh-* annotations, the inventory's defaults, Defaults
// (kup's flags), and last the node's own InternalIP (then ExternalIP,
// then hostname), port 22 and the local user name, as ssh does.
type Resolver struct {
	Inventory *Inventory
	Defaults  Endpoint
}

// Host resolves node's endpoint.
func (r *Resolver) Host(node *corev1.Node) (Host, error) {
	var layers []Endpoint
	if r.Inventory != nil {
		if ep, ok := r.Inventory.Hosts[node.Name]; ok {
			layers = append(layers, ep)
		}
	}
	ann, err := annotationEndpoint(node)
	if err != nil {
		return Host{}, err
	}
	layers = append(layers, ann)
	if r.Inventory != nil {
		layers = append(layers, r.Inventory.Defaults)
	}
	layers = append(layers, r.Defaults)
	var ep Endpoint
	for _, l := range layers {
		if ep.Address == "" {
			ep.Address = l.Address
		}
		if ep.Port == 0 {
			ep.Port = l.Port
		}
		if ep.User == "" {
			ep.User = l.User
		}
		if ep.Bastion == "" {
			ep.Bastion = l.Bastion
		}
	}
	if ep.Address == "" {
		ep.Address = nodeAddress(node)
	}
	if ep.Address == "" {
		return Host{}, fmt.Errorf("node %s: no SSH address (no inventory entry, no %s annotation, no address in its status)", node.Name, AnnotationAddress)
	}
	if ep.Port == 0 {
		ep.Port = DefaultPort
	}
	if ep.User == "" {
		ep.User = localUser()
	}
	h := Host{Node: node.Name, Address: ep.Address, Port: ep.Port, User: ep.User}
	if ep.Bastion != "" && ep.Bastion != "none" {
		b, err := ParseBastion(ep.Bastion, ep.User)
		if err != nil {
			return Host{}, fmt.Errorf("node %s: %w", node.Name, err)
		}
		h.Bastion = b
	}
	return h, nil
}

func annotationEndpoint(node *corev1.Node) (Endpoint, error) {
	a := node.Annotations
	ep := Endpoint{Address: a[AnnotationAddress], User: a[AnnotationUser], Bastion: a[AnnotationBastion]}
	if p := a[AnnotationPort]; p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return ep, fmt.Errorf("node %s: annotation %s=%q is not a port", node.Name, AnnotationPort, p)
		}
		ep.Port = n
	}
	if err := ep.validate("annotations of node " + node.Name); err != nil {
		return ep, err
	}
	return ep, nil
}

func nodeAddress(n *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}
