// STAND-IN: the package schema this plugin serves from GetSchema. Hand-written for the subset it
// implements (command:local:Command); property names and types follow the public @pulumi/command
// 1.2.1 API. The engine does not need it for `pulumi up` from the Node SDK; it is here so that
// tools that ask (`pulumi package get-schema`, `pulumi plugin` inspection) get a truthful answer.
package main

import (
	"encoding/json"
)

func schemaJSON(version string) string {
	str := map[string]any{"type": "string"}
	strList := map[string]any{"type": "array", "items": str}
	inputs := map[string]any{
		"create":                 withDesc(str, "The command to run on create."),
		"update":                 withDesc(str, "The command to run on update; `create` is run when it is not set."),
		"delete":                 withDesc(str, "The command to run on delete."),
		"dir":                    withDesc(str, "The working directory; default: the provider's working directory."),
		"environment":            withDesc(map[string]any{"type": "object", "additionalProperties": str}, "Additional environment variables."),
		"interpreter":            withDesc(strList, "The program and arguments that run the command; default [\"/bin/sh\", \"-c\"]."),
		"stdin":                  withDesc(str, "Passed to the command's standard input."),
		"logging":                withDesc(map[string]any{"$ref": "#/types/command:local:Logging"}, "Which output streams go to the engine log; default stdoutAndStderr."),
		"triggers":               withDesc(map[string]any{"type": "array", "items": map[string]any{"$ref": "pulumi.json#/Any"}, "replaceOnChanges": true}, "A change of any value replaces the resource."),
		"addPreviousOutputInEnv": withDesc(map[string]any{"type": "boolean", "default": true}, "Pass the previous stdout/stderr as PULUMI_COMMAND_STDOUT/PULUMI_COMMAND_STDERR."),
		"assetPaths":             withDesc(strList, "Not supported by the stand-in (rejected)."),
		"archivePaths":           withDesc(strList, "Not supported by the stand-in (rejected)."),
	}
	props := map[string]any{
		"stdout":  withDesc(str, "The command's standard output, without the final newline."),
		"stderr":  withDesc(str, "The command's standard error, without the final newline."),
		"assets":  withDesc(map[string]any{"type": "object", "additionalProperties": map[string]any{"$ref": "pulumi.json#/Asset"}}, "Never set by the stand-in."),
		"archive": withDesc(map[string]any{"$ref": "pulumi.json#/Archive"}, "Never set by the stand-in."),
	}
	for k, v := range inputs {
		props[k] = v
	}
	schema := map[string]any{
		"name":        "command",
		"version":     version,
		"displayName": "Command (istio-ca stand-in)",
		"description": "istio-ca clean-room STAND-IN for the Pulumi command provider: command:local:Command only. Not the upstream pulumi-command provider.",
		"config":      map[string]any{},
		"provider":    map[string]any{"type": "object"},
		"types": map[string]any{
			"command:local:Logging": map[string]any{
				"type": "string",
				"enum": []any{
					map[string]any{"name": "stdout", "value": "stdout"},
					map[string]any{"name": "stderr", "value": "stderr"},
					map[string]any{"name": "stdoutAndStderr", "value": "stdoutAndStderr"},
					map[string]any{"name": "none", "value": "none"},
				},
			},
		},
		"resources": map[string]any{
			commandToken: map[string]any{
				"description":     "Runs local commands on create, update and delete (istio-ca stand-in).",
				"inputProperties": inputs,
				"properties":      props,
				"required":        []string{"stderr", "stdout"},
			},
		},
	}
	b, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

func withDesc(t map[string]any, desc string) map[string]any {
	out := map[string]any{"description": desc}
	for k, v := range t {
		out[k] = v
	}
	return out
}
