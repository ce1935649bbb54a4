// The table formats of `istioctl proxy-status` (<= 1.26 per-type columns, >= 1.27 SUBSCRIBED TYPES, `-v 1`).
import { formatError, parseStatusCell, ProxyStatusEntry, ProxyStatusFormat, ProxyStatusReport } from "./proxyStatusModel";


interface Column {
    title: string;
    start: number;
}

function headerColumns(header: string): Column[] {
    const cols: Column[] = [];
    // A column title is words joined by single spaces ("SUBSCRIBED TYPES"); columns are separated
    // by two or more blanks or a tab.
    const re = /\S+(?: \S+)*/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(header)) !== null) {
        cols.push({ title: m[0], start: m.index });
    }
    return cols;
}

function splitByOffsets(line: string, cols: Column[]): string[] | undefined {
    const cells: string[] = [];
    for (let i = 0; i < cols.length; i++) {
        const from = cols[i].start;
        const to = i + 1 < cols.length ? cols[i + 1].start : line.length;
        if (i > 0 && from < line.length && from > 0 && !/\s/.test(line[from - 1])) {
            return undefined; // a column boundary falls inside a word: not aligned
        }
        const cell = line.slice(from, Math.max(from, to)).trim();
        if (/\s{2,}|\t/.test(cell)) {
            return undefined; // two cells in one slot: not aligned
        }
        cells.push(cell);
    }
    if (line.slice(0, cols[0].start).trim() !== "") {
        return undefined;
    }
    return cells;
}

/** Splits a row; `required` are the columns that are never empty (NAME, ISTIOD), which catches truncated rows. */
function splitRow(line: string, cols: Column[], required: number[], lineNo: number): string[] {
    const aligned = splitByOffsets(line, cols);
    if (aligned && required.every((i) => aligned[i] !== "")) {
        return aligned;
    }
    const loose = line.trim().split(/\t+|\s{2,}/);
    if (loose.length === cols.length) {
        return loose;
    }
    throw new Error(
        `istioctl proxy-status table, line ${lineNo}: ${loose.length} cells but the header has ` +
            `${cols.length} columns (${cols.map((c) => c.title).join(", ")}): ${JSON.stringify(line)}`,
    );
}

export function parseTable(output: string): ProxyStatusReport {
    const lines = output.split(/\r?\n/);
    const headerIdx = lines.findIndex((l) => l.trim() !== "");
    const header = lines[headerIdx];
    const cols = headerColumns(header);
    const titles = cols.map((c) => c.title.toUpperCase());
    if (titles[0] !== "NAME" && titles[0] !== "PROXY") {
        throw formatError(output, "no NAME/PROXY header");
    }
    const istiodCol = titles.findIndex((t) => t === "ISTIOD" || t === "PILOT");
    const versionCol = titles.indexOf("VERSION");
    const clusterCol = titles.indexOf("CLUSTER");
    const subscribedCol = titles.indexOf("SUBSCRIBED TYPES");
    if (istiodCol < 0) {
        throw formatError(output, "no ISTIOD/PILOT column in the header");
    }
    const typeCols: number[] = [];
    titles.forEach((t, i) => {
        if (i === 0 || i === istiodCol || i === versionCol || i === clusterCol || i === subscribedCol) {
            return;
        }
        if (!/^[A-Z][A-Z0-9]*$/.test(t)) {
            throw formatError(output, `unexpected column ${JSON.stringify(cols[i].title)}`);
        }
        typeCols.push(i);
    });
    const format: ProxyStatusFormat = subscribedCol >= 0 ? "subscribed-table" : "xds-table";
    if (format === "xds-table" && typeCols.length === 0) {
        throw formatError(output, "neither xDS type columns (CDS, LDS, ...) nor SUBSCRIBED TYPES");
    }
    if (format === "subscribed-table" && typeCols.length > 0) {
        throw formatError(output, "both SUBSCRIBED TYPES and per-type columns");
    }

    const proxies: ProxyStatusEntry[] = [];
    for (let i = headerIdx + 1; i < lines.length; i++) {
        const line = lines[i];
        if (line.trim() === "") {
            continue;
        }
        const cells = splitRow(line, cols, [0, istiodCol], i + 1);
        const entry: ProxyStatusEntry = {
            name: cells[0],
            istiod: cells[istiodCol],
            version: versionCol >= 0 ? cells[versionCol] : "",
            xds: {},
        };
        if (clusterCol >= 0) {
            entry.cluster = cells[clusterCol];
        }
        for (const c of typeCols) {
            entry.xds[titles[c]] = parseStatusCell(cells[c]);
        }
        if (subscribedCol >= 0) {
            entry.subscribedTypes = parseSubscribed(cells[subscribedCol], i + 1);
        }
        proxies.push(entry);
    }
    return { format, syncReported: format === "xds-table", types: typeCols.map((c) => titles[c]), proxies };
}

function parseSubscribed(cell: string, lineNo: number): string[] {
    // `4 (CDS,LDS,EDS,RDS)`; `0` (or `0 ()`) when nothing is subscribed.
    const m = /^(\d+)\s*(?:\(([^)]*)\))?$/.exec(cell.trim());
    if (!m) {
        throw new Error(
            `istioctl proxy-status table, line ${lineNo}: SUBSCRIBED TYPES cell ${JSON.stringify(cell)} ` +
                `is not of the form "N (T1,T2,...)"`,
        );
    }
    const types = (m[2] ?? "").split(",").map((t) => t.trim()).filter((t) => t !== "");
    if (types.length !== Number(m[1])) {
        throw new Error(
            `istioctl proxy-status table, line ${lineNo}: SUBSCRIBED TYPES ${JSON.stringify(cell)} ` +
                `announces ${m[1]} types but lists ${types.length}`,
        );
    }
    return types;
}
