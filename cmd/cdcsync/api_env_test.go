package main

import (
	"strings"
	"testing"
)

// The REST API's tokens come from CDCSYNC_API_TOKEN[_READ] or the
// *_FILE variables, never from the worker file; control_topic from the
// file or CDCSYNC_CONTROL_TOPIC.
func TestAPIConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"CDCSYNC_API_TOKEN":           "tok",
		"CDCSYNC_API_TOKEN_READ_FILE": "/run/secrets/read",
		"CDCSYNC_CONTROL_TOPIC":       "ops.control",
	}
	wf, err := loadWorkerConfig("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if wf.APIToken.Reveal() != "tok" || wf.APITokenReadFile != "/run/secrets/read" || wf.ControlTopic != "ops.control" {
		t.Errorf("config %+v", wf.Config)
	}
	off := writeFile(t, t.TempDir(), "worker.yaml", "control_topic: \"\"\napi_token_file: /run/secrets/api\n")
	if wf, err = loadWorkerConfig(off, func(string) string { return "" }); err != nil || wf.ControlTopic != "" || wf.APITokenFile != "/run/secrets/api" {
		t.Errorf("control_topic \"\" and api_token_file from the file: %+v %v", wf.Config, err)
	}
	for _, key := range []string{"api_token", "api_token_read"} {
		file := writeFile(t, t.TempDir(), "worker.yaml", key+": hunter2\n")
		_, err := loadWorkerConfig(file, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), key+"_file") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s in the worker file: %v; want a refusal naming %s_file without the value", key, err, key)
		}
	}
}
