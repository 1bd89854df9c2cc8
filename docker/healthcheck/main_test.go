package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/unhealthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("error\n"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/api/v1/health", http.StatusFound)
	})
	release := make(chan struct{})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)

	// A loopback port with nothing listening: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/api/v1/health"
	l.Close()

	tests := []struct {
		name    string
		args    []string
		want    int
		wantErr string
	}{
		{"healthy", []string{srv.URL + "/api/v1/health"}, 0, ""},
		{"unhealthy 500", []string{srv.URL + "/unhealthy"}, 1, "500"},
		{"not found", []string{srv.URL + "/nope"}, 1, "404"},
		{"redirect is not health", []string{srv.URL + "/redirect"}, 1, "302"},
		{"nothing listening", []string{closed}, 1, "healthcheck:"},
		{"timeout", []string{"-timeout", "100ms", srv.URL + "/slow"}, 1, "deadline"},
		{"not a URL", []string{"127.0.0.1:2020"}, 2, "not an http(s) URL"},
		{"ftp URL", []string{"ftp://127.0.0.1/x"}, 2, "not an http(s) URL"},
		{"two URLs", []string{srv.URL, srv.URL}, 2, "usage"},
		{"bad flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"zero timeout", []string{"-timeout", "0s", srv.URL}, 2, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if got := run(ctx, tt.args, &stderr); got != tt.want {
				t.Fatalf("run(%q) = %d, want %d; stderr: %s", tt.args, got, tt.want, stderr.String())
			}
			if tt.wantErr != "" && !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.wantErr)
			}
			if tt.want == 0 && stderr.Len() != 0 {
				t.Errorf("healthy check printed %q", stderr.String())
			}
		})
	}
}
