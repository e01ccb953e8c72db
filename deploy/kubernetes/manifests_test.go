// Package kubernetes checks the manifests in this directory structurally:
// no Kubernetes cluster is available where the tests run, so nothing here
// applies them. The checks are what a typo would break without kubectl
// noticing: names that must agree across documents (the headless Service,
// the StatefulSet's pod names in -join and -seeds, named ports in probes and
// Services), the ports of the design, probes on the admin port, -m against
// the memory limit, and running as the image's non-root user.
//
//	go test ./deploy/kubernetes/
package kubernetes

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The ports of DESIGN.md's table and docs/operations.md.
const (
	memcachePort      = 11211
	gossipPort        = 7946
	nodeAdminPort     = 9100
	proxyMemcachePort = 11311
	proxyAdminPort    = 9101
)

// doc is one parsed manifest document and the file it came from.
type doc struct {
	file string
	m    map[string]any
}

func (d doc) kind() string { return str(d.m, "kind") }
func (d doc) name() string { return str(d.m, "metadata", "name") }

// get walks v by keys (mapping keys, or sequence indexes as decimal
// strings) and returns nil where the path does not exist.
func get(v any, path ...string) any {
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func loadDocs(t *testing.T) []doc {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []doc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := parseDocs(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, m := range docs {
			out = append(out, doc{file: f, m: m})
		}
	}
	return out
}

// find returns the one document of kind and name.
func find(t *testing.T, docs []doc, kind, name string) doc {
	t.Helper()
	for _, d := range docs {
		if d.kind() == kind && d.name() == name {
			return d
		}
	}
	t.Fatalf("no %s %q in the manifests", kind, name)
	return doc{}
}

func TestEveryDocumentIsAnObject(t *testing.T) {
	docs := loadDocs(t)
	apiVersions := map[string]string{"Service": "v1", "StatefulSet": "apps/v1", "Deployment": "apps/v1",
		"PodDisruptionBudget": "policy/v1", "Secret": "v1", "ConfigMap": "v1"}
	seen := map[string]bool{}
	for _, d := range docs {
		k, n := d.kind(), d.name()
		if k == "" || n == "" || str(d.m, "apiVersion") == "" {
			t.Errorf("%s: a document without apiVersion, kind or metadata.name: %v", d.file, d.m)
			continue
		}
		if want, ok := apiVersions[k]; !ok || str(d.m, "apiVersion") != want {
			t.Errorf("%s: %s %s has apiVersion %q, want %q", d.file, k, n, str(d.m, "apiVersion"), want)
		}
		if seen[k+"/"+n] {
			t.Errorf("%s: %s %s defined twice", d.file, k, n)
		}
		seen[k+"/"+n] = true
		if ns := str(d.m, "metadata", "namespace"); ns != "" {
			t.Errorf("%s: %s %s pins namespace %q; the manifests go into any namespace (kubectl -n)", d.file, k, n, ns)
		}
	}
	for _, want := range []string{"Service/cached", "Service/cached-client", "StatefulSet/cached", "Deployment/cacheproxy", "Service/cacheproxy"} {
		if !seen[want] {
			t.Errorf("no %s", want)
		}
	}
}

// container returns the pod template's only container of a workload.
func container(t *testing.T, d doc) map[string]any {
	t.Helper()
	cs := list(d.m, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%s %s: %d containers, want 1", d.kind(), d.name(), len(cs))
	}
	return cs[0].(map[string]any)
}

// args returns a container's -flag=value arguments as a map.
func args(t *testing.T, c map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range list(c, "args") {
		s, _ := a.(string)
		flag, value, ok := strings.Cut(s, "=")
		if !strings.HasPrefix(flag, "-") || !ok {
			t.Errorf("argument %q: write flags as -flag=value", s)
			continue
		}
		out[strings.TrimPrefix(flag, "-")] = value
	}
	return out
}

// containerPorts maps a container's port names to "number/protocol".
func containerPorts(c map[string]any) map[string]string {
	out := map[string]string{}
	for _, p := range list(c, "ports") {
		proto := str(p, "protocol")
		if proto == "" {
			proto = "TCP"
		}
		out[str(p, "name")] = str(p, "containerPort") + "/" + proto
	}
	return out
}

func checkWorkload(t *testing.T, d doc, c map[string]any, adminPort int, wantPorts map[string]string) {
	t.Helper()
	what := d.kind() + " " + d.name()
	if got := str(c, "image"); got != "hotcache/cached:dev" {
		t.Errorf("%s: image %q, want hotcache/cached:dev", what, got)
	}
	if got := str(c, "imagePullPolicy"); got != "IfNotPresent" {
		t.Errorf("%s: imagePullPolicy %q, want IfNotPresent (the image is loaded into the cluster, not pulled)", what, got)
	}
	ports := containerPorts(c)
	for name, want := range wantPorts {
		if ports[name] != want {
			t.Errorf("%s: port %s is %q, want %s", what, name, ports[name], want)
		}
	}
	if len(ports) != len(wantPorts) {
		t.Errorf("%s: ports %v, want %v", what, ports, wantPorts)
	}
	// Probes on the admin port, which the process must bind on all
	// interfaces for the kubelet to reach it.
	a := args(t, c)
	if a["admin"] != ":"+strconv.Itoa(adminPort) {
		t.Errorf("%s: -admin=%q, want :%d (the default binds loopback only, out of the kubelet's reach)", what, a["admin"], adminPort)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := str(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s: %s path %q, want %s", what, probe, got, path)
		}
		port := str(c, probe, "httpGet", "port")
		if p, ok := ports[port]; ok {
			port = strings.TrimSuffix(p, "/TCP")
		}
		if port != strconv.Itoa(adminPort) {
			t.Errorf("%s: %s on port %q, want the admin port %d", what, probe, str(c, probe, "httpGet", "port"), adminPort)
		}
	}
	// The image's user (Dockerfile: USER 65534:65534), and no root.
	pod := get(d.m, "spec", "template", "spec", "securityContext")
	if str(pod, "runAsNonRoot") != "true" && str(c, "securityContext", "runAsNonRoot") != "true" {
		t.Errorf("%s: runAsNonRoot is not set", what)
	}
	if u := str(pod, "runAsUser"); u != "" && u != "65534" {
		t.Errorf("%s: runAsUser %s, want the image's 65534", what, u)
	}
	if str(c, "securityContext", "allowPrivilegeEscalation") != "false" {
		t.Errorf("%s: allowPrivilegeEscalation is not false", what)
	}
	// Every $(VAR) in the arguments is defined: Kubernetes leaves an
	// undefined one as it is, which would reach the flag verbatim.
	env := map[string]bool{}
	for _, e := range list(c, "env") {
		env[str(e, "name")] = true
	}
	for _, arg := range list(c, "args") {
		for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(arg.(string), -1) {
			if !env[m[1]] {
				t.Errorf("%s: argument %q uses $(%s), which its env does not define", what, arg, m[1])
			}
		}
	}
	if str(c, "resources", "limits", "memory") == "" || str(c, "resources", "requests", "memory") == "" {
		t.Errorf("%s: no memory request or limit", what)
	}
	// The Service selects the pods: the selector's labels are the template's.
	sel, _ := get(d.m, "spec", "selector", "matchLabels").(map[string]any)
	for k, v := range sel {
		if str(d.m, "spec", "template", "metadata", "labels", k) != v {
			t.Errorf("%s: selector %s=%v does not match the pod template's labels", what, k, v)
		}
	}
}

// mebibytes reads a Kubernetes or Go memory quantity (512Mi, 1Gi, 160MiB).
func mebibytes(t *testing.T, q string) int {
	t.Helper()
	for suffix, mult := range map[string]int{"Mi": 1, "MiB": 1, "Gi": 1024, "GiB": 1024} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			if v, err := strconv.Atoi(n); err == nil {
				return v * mult
			}
		}
	}
	t.Fatalf("memory quantity %q: write it in Mi or Gi", q)
	return 0
}

// TestNodes checks the StatefulSet of cached and its Services.
func TestNodes(t *testing.T) {
	docs := loadDocs(t)
	sts := find(t, docs, "StatefulSet", "cached")
	c := container(t, sts)
	checkWorkload(t, sts, c, nodeAdminPort, map[string]string{
		"memcache": strconv.Itoa(memcachePort) + "/TCP", "gossip-tcp": strconv.Itoa(gossipPort) + "/TCP",
		"gossip-udp": strconv.Itoa(gossipPort) + "/UDP", "admin": strconv.Itoa(nodeAdminPort) + "/TCP",
	})
	if r := str(sts.m, "spec", "replicas"); r != "3" {
		t.Errorf("replicas %s, want 3", r)
	}
	// The headless Service named by serviceName gives the pods their DNS
	// names, and publishes them before they are ready so that nodes
	// starting together can gossip.
	svcName := str(sts.m, "spec", "serviceName")
	headless := find(t, docs, "Service", svcName)
	if str(headless.m, "spec", "clusterIP") != "None" {
		t.Errorf("Service %s (the StatefulSet's serviceName) is not headless", svcName)
	}
	if str(headless.m, "spec", "publishNotReadyAddresses") != "true" {
		t.Errorf("Service %s does not publish not-ready pods: nodes starting together would not find each other", svcName)
	}
	a := args(t, c)
	// -join: gossip addresses under the headless Service, on the gossip port.
	if a["join"] == "" {
		t.Fatal("no -join")
	}
	for _, seed := range strings.Split(a["join"], ",") {
		host, port, err := net.SplitHostPort(seed)
		if err != nil || port != strconv.Itoa(gossipPort) {
			t.Errorf("-join %q: want host:%d", seed, gossipPort)
			continue
		}
		if labels := strings.Split(host, "."); labels[0] != svcName && (len(labels) < 2 || labels[1] != svcName) {
			t.Errorf("-join %q is not the headless Service %q nor one of its pods", seed, svcName)
		}
	}
	if a["name"] != "$(POD_NAME)" {
		t.Errorf("-name=%q, want $(POD_NAME): the pod name is stable across restarts", a["name"])
	}
	if a["p"] != strconv.Itoa(memcachePort) || !strings.HasSuffix(a["gossip"], ":"+strconv.Itoa(gossipPort)) {
		t.Errorf("-p=%q -gossip=%q, want %d and :%d", a["p"], a["gossip"], memcachePort, gossipPort)
	}
	// -m: cached sets the Go soft memory limit to 1.25 x m + 24 MiB
	// (docs/memory.md), and measured a peak RSS under 1.5 x m + 32 MiB
	// (TestMemoryBound); the container's limit must leave that room.
	m, err := strconv.Atoi(a["m"])
	if err != nil || m <= 0 {
		t.Fatalf("-m=%q", a["m"])
	}
	limit := mebibytes(t, str(c, "resources", "limits", "memory"))
	if need := m*3/2 + 32; limit < need {
		t.Errorf("memory limit %d MiB is under 1.5 x -m %d + 32 = %d MiB", limit, m, need)
	}
	if soft := m*5/4 + 24; soft >= limit {
		t.Errorf("the soft memory limit %d MiB that -m %d sets is not under the container's %d MiB", soft, m, limit)
	}
	if req := mebibytes(t, str(c, "resources", "requests", "memory")); req < m*5/4+24 {
		t.Errorf("memory request %d MiB is under the soft limit %d MiB: the scheduler would overcommit", req, m*5/4+24)
	}
	// The gossip key comes from a Secret that README.md tells how to make.
	secret := ""
	for _, e := range list(c, "env") {
		if str(e, "name") == "CACHED_GOSSIP_KEY" {
			secret = str(e, "valueFrom", "secretKeyRef", "name")
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if secret == "" || !strings.Contains(string(readme), "create secret generic "+secret+" ") {
		t.Errorf("CACHED_GOSSIP_KEY from secret %q, which README.md does not tell how to create", secret)
	}
	checkServicePorts(t, docs, "cached", c, sts)
	client := find(t, docs, "Service", "cached-client")
	if str(client.m, "spec", "clusterIP") == "None" || str(client.m, "spec", "ports", "0", "port") != strconv.Itoa(memcachePort) {
		t.Errorf("Service cached-client: want a ClusterIP Service on %d", memcachePort)
	}
	checkServicePorts(t, docs, "cached-client", c, sts)
	pdb := find(t, docs, "PodDisruptionBudget", "cached")
	for k, v := range get(pdb.m, "spec", "selector", "matchLabels").(map[string]any) {
		if str(sts.m, "spec", "template", "metadata", "labels", k) != v {
			t.Errorf("PodDisruptionBudget selects %s=%v, which the nodes do not carry", k, v)
		}
	}
}

// checkServicePorts checks that Service name selects the workload's pods
// and that each of its ports targets a port the container has.
func checkServicePorts(t *testing.T, docs []doc, name string, c map[string]any, w doc) {
	t.Helper()
	svc := find(t, docs, "Service", name)
	sel, _ := get(svc.m, "spec", "selector").(map[string]any)
	if len(sel) == 0 {
		t.Errorf("Service %s selects nothing", name)
	}
	for k, v := range sel {
		if str(w.m, "spec", "template", "metadata", "labels", k) != v {
			t.Errorf("Service %s selects %s=%v, which %s %s's pods do not carry", name, k, v, w.kind(), w.name())
		}
	}
	ports := containerPorts(c)
	for _, p := range list(svc.m, "spec", "ports") {
		target := str(p, "targetPort")
		if target == "" {
			target = str(p, "port")
		}
		proto := str(p, "protocol")
		if proto == "" {
			proto = "TCP"
		}
		cp, ok := ports[target]
		if !ok {
			for _, v := range ports {
				if v == target+"/"+proto {
					cp, ok = v, true
				}
			}
		}
		if !ok || !strings.HasSuffix(cp, "/"+proto) {
			t.Errorf("Service %s port %s targets %q/%s, which the container does not have (%v)", name, str(p, "name"), target, proto, ports)
			continue
		}
		if str(p, "port")+"/"+proto != cp {
			t.Errorf("Service %s port %s is %s/%s but the container's is %s: keep the design's ports", name, str(p, "name"), str(p, "port"), proto, cp)
		}
	}
}

// TestProxy checks the Deployment of cacheproxy: its seeds are the
// StatefulSet's pods under the headless Service, on the memcache port.
func TestProxy(t *testing.T) {
	docs := loadDocs(t)
	dep := find(t, docs, "Deployment", "cacheproxy")
	c := container(t, dep)
	checkWorkload(t, dep, c, proxyAdminPort, map[string]string{
		"memcache": strconv.Itoa(proxyMemcachePort) + "/TCP", "admin": strconv.Itoa(proxyAdminPort) + "/TCP",
	})
	if r := str(dep.m, "spec", "replicas"); r != "2" {
		t.Errorf("replicas %s, want 2", r)
	}
	if cmd := list(c, "command"); len(cmd) != 1 || cmd[0] != "/cacheproxy" {
		t.Errorf("command %v, want [/cacheproxy] (the image's entrypoint is the node)", cmd)
	}
	a := args(t, c)
	if a["p"] != strconv.Itoa(proxyMemcachePort) {
		t.Errorf("-p=%q, want %d", a["p"], proxyMemcachePort)
	}
	sts := find(t, docs, "StatefulSet", "cached")
	svcName := str(sts.m, "spec", "serviceName")
	replicas, _ := strconv.Atoi(str(sts.m, "spec", "replicas"))
	var pods []string
	for _, seed := range strings.Split(a["seeds"], ",") {
		host, port, err := net.SplitHostPort(seed)
		if err != nil || port != strconv.Itoa(memcachePort) {
			t.Errorf("-seeds %q: want host:%d (memcache addresses, not gossip)", seed, memcachePort)
			continue
		}
		labels := strings.Split(host, ".")
		ord, ok := strings.CutPrefix(labels[0], sts.name()+"-")
		i, err := strconv.Atoi(ord)
		if len(labels) < 2 || labels[1] != svcName || !ok || err != nil || i < 0 || i >= replicas {
			t.Errorf("-seeds %q is not a pod <%s-N>.%s of the StatefulSet (N < %d)", seed, sts.name(), svcName, replicas)
		}
		pods = append(pods, labels[0])
	}
	if slices.Sort(pods); len(slices.Compact(pods)) < 2 {
		t.Errorf("-seeds names %d distinct nodes; name several so the proxy starts while one is down", len(pods))
	}
	checkServicePorts(t, docs, "cacheproxy", c, dep)
	if lim, soft := mebibytes(t, str(c, "resources", "limits", "memory")), envValue(c, "GOMEMLIMIT"); soft != "" && mebibytes(t, soft) >= lim {
		t.Errorf("GOMEMLIMIT %s is not under the memory limit %d MiB", soft, lim)
	}
}

func envValue(c map[string]any, name string) string {
	for _, e := range list(c, "env") {
		if str(e, "name") == name {
			return str(e, "value")
		}
	}
	return ""
}

// TestPortsMatchTheImage: the Dockerfile's EXPOSE line lists the ports the
// manifests use.
func TestPortsMatchTheImage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var expose []string
	for _, l := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(l, "EXPOSE "); ok {
			expose = append(expose, strings.Fields(f)...)
		}
	}
	for _, p := range []string{"11211", "7946", "7946/udp", "9100", "11311", "9101"} {
		if !slices.Contains(expose, p) {
			t.Errorf("the Dockerfile does not EXPOSE %s (it has %v)", p, expose)
		}
	}
}

// TestYAMLSubset: the reader refuses what it does not understand instead
// of misreading it.
func TestYAMLSubset(t *testing.T) {
	docs, err := parseDocs("a: 1\nb:\n  - x: \"q # not a comment\"\n    y: 'it''s'\n  - z\n# c\n---\nc: d # comment\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || str(docs[0], "b", "0", "x") != "q # not a comment" || str(docs[0], "b", "0", "y") != "it's" ||
		str(docs[0], "b", "1") != "z" || str(docs[1], "c") != "d" {
		t.Fatalf("parsed %v", docs)
	}
	for _, bad := range []string{"a: [1, 2]\n", "a: {b: c}\n", "a: |\n  text\n", "a: &x 1\n", "a: 1\n a2: 2\n", "a: 1\na: 2\n"} {
		if _, err := parseDocs(bad); err == nil {
			t.Errorf("parseDocs(%q) accepted it", bad)
		}
	}
}
