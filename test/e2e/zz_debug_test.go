package e2e_test

import (
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
)

func TestZZDebug(t *testing.T) {
	p := startPeers(t, peerOptions{Seed: 1})
	recs := k8sRecords(1, 2000, 0, chunkgen.Options{Namespaces: 20, Containers: 3, Start: recentDays(2), Days: 2})
	files := map[string][]byte{"a.props": []byte(p.props())}
	names := chunkFiles(files, "k8s", chunks(recs, 2000))
	var s script
	s.line("instance a a.props")
	s.workers("a", 4, "kube.var.log.containers.e2e", names)
	runHost(t, hostRun{files: files, script: s.String()})
	n := 0
	forEachEvent(t, p.moto, func(group, stream string, ts int64, msg string) { n++; if n < 3 { t.Log(group, stream, ts, msg) } })
	t.Log(n)
}
