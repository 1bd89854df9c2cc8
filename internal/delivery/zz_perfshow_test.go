package delivery
import ("testing";"fmt";"time"
"github.com/cwos/cloudwatch-opensearch/internal/chunkgen"
"github.com/cwos/cloudwatch-opensearch/internal/event")
func TestPerfShow(t *testing.T){
 chunk, _ := chunkgen.K8sChunk(42, 3, chunkgen.Options{Namespaces: 5, Containers: 4, Start: time.Now().Add(-time.Hour), Days: 1})
 evs,_ := event.Decode(chunk,nil)
 for _,e := range evs { j,_ := event.AppendJSON(nil,e.Record); fmt.Println(len(e.Record), string(j)) }
}
