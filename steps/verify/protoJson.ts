// Reading protobuf messages that istioctl prints as JSON: field names may be protojson's
// camelCase or the original proto snake_case, depending on the command and version.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: Json | undefined): v is JsonObject {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Field by protojson (camelCase) or proto (snake_case) name. */
export function field(o: JsonObject, camel: string): Json | undefined {
    if (camel in o) {
        return o[camel];
    }
    return o[camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)];
}

export function str(v: Json | undefined): string | undefined {
    return typeof v === "string" ? v : undefined;
}
