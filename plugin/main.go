// Command plugin is the Fluent Bit output plugin cloudwatch_opensearch, built with
// -buildmode=c-shared. This file holds only the cgo exports Fluent Bit's Go proxy calls
// (src/proxy/go/go.c upstream); each one converts C arguments and hands over to Go code that
// plain tests reach (internal/registry, and internal/delivery below it).
package main

/*
#include <stdlib.h>

// The head of struct flb_plugin_proxy_def, as fluent-bit-go and Fluent Bit lay it out. Only
// used to tell whether a def still holds the strings FLBPluginRegister allocated, so a second
// FLBPluginUnregister of the same def does not free them twice.
struct cwos_def_head {
	int type;
	int proxy;
	int flags;
	char *name;
	char *description;
};

static int cwos_def_registered(void *def) {
	return def != NULL && ((struct cwos_def_head *)def)->name != NULL;
}

static void cwos_def_forget(void *def) {
	((struct cwos_def_head *)def)->name = NULL;
	((struct cwos_def_head *)def)->description = NULL;
}
*/
import "C"

import (
	"context"
	"math"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"

	"github.com/cwos/cloudwatch-opensearch/internal/delivery"
	"github.com/cwos/cloudwatch-opensearch/internal/registry"
)

// Name is the plugin name used in [OUTPUT] Name.
const Name = registry.PluginName

const description = "Writes every record to CloudWatch Logs and to OpenSearch _bulk"

// plugins maps the ids stored with FLBPluginSetContext to live instances. It is the one piece
// of process state: Fluent Bit gives a Go .so no other place to keep it, and a Go .so cannot be
// unloaded, so it survives a hot reload (FLBPluginRegister resets the instance numbering).
var plugins = registry.New(nil)

// keySource reads [OUTPUT] keys through Fluent Bit during FLBPluginInit. It is only valid for
// the duration of that call: Fluent Bit points the shared plugin struct at the next instance
// afterwards, so nothing may keep it (delivery.New reads every key once, in config.Parse).
type keySource struct{ plugin unsafe.Pointer }

func (s keySource) Get(key string) string { return output.FLBPluginConfigKey(s.plugin, key) }

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) C.int {
	plugins.Registered()
	return C.int(output.FLBPluginRegister(def, Name, description))
}

//export FLBPluginInit
func FLBPluginInit(plugin unsafe.Pointer) C.int {
	id, rc := plugins.Init(func(name string) (registry.Flusher, error) {
		in, err := delivery.New(context.Background(), keySource{plugin}, delivery.Options{Name: name})
		if err != nil {
			return nil, err // delivery.New has logged one line per problem
		}
		return in, nil
	})
	if rc == output.FLB_OK {
		output.FLBPluginSetContext(plugin, id)
	}
	return C.int(rc)
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.size_t, tag *C.char) C.int {
	if length > math.MaxInt32 || (data == nil && length > 0) {
		plugins.Reporter().Errorf("flush: invalid chunk (%d bytes at %p); dropping it", uint64(length), data)
		return output.FLB_ERROR
	}
	id, _ := output.FLBPluginGetContext(ctx).(int)
	// The chunk is Fluent Bit's memory and only valid during this call: Flush copies what it
	// keeps. The tag is freed by Fluent Bit right after the call: GoString copies it.
	chunk := unsafe.Slice((*byte)(data), int(length))
	return C.int(plugins.Flush(id, chunk, C.GoString(tag)))
}

// FLBPluginFlush is the old single-instance entry point; Fluent Bit only calls it when
// FLBPluginFlushCtx is missing, which it never is here. It cannot tell instances apart.
//
//export FLBPluginFlush
func FLBPluginFlush(data unsafe.Pointer, length C.size_t, tag *C.char) C.int {
	return C.int(plugins.FlushWithoutContext(C.GoString(tag)))
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) C.int {
	id, _ := output.FLBPluginGetContext(ctx).(int)
	return C.int(plugins.Exit(id))
}

// FLBPluginExit is the old single-instance exit; if it is ever called, it closes every instance
// still open.
//
//export FLBPluginExit
func FLBPluginExit() C.int {
	return C.int(plugins.ExitAll())
}

//export FLBPluginUnregister
func FLBPluginUnregister(def unsafe.Pointer) {
	if C.cwos_def_registered(def) == 0 {
		return // never registered, or already unregistered
	}
	output.FLBPluginUnregister(def)
	C.cwos_def_forget(def)
}

func main() {}
