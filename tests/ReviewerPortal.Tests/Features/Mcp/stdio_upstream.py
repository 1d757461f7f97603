# A minimal MCP server over stdio (newline-delimited JSON-RPC) for the gateway's tests: "whoami" answers with its
# process id, "die" ends the process without answering (a crashed upstream).
import json, os, sys

TOOLS = [
    {"name": "whoami", "description": "The server's process id.", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "die", "description": "Exits at once.", "inputSchema": {"type": "object", "properties": {}}},
]

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    message = json.loads(line)
    if "id" not in message or "method" not in message:
        continue
    method, rid = message["method"], message["id"]
    if method == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "stdio-test", "version": "1"}}
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and message["params"]["name"] == "die":
        os._exit(3)
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "pid %d" % os.getpid()}]}
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}}) + "\n")
        sys.stdout.flush()
        continue
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n")
    sys.stdout.flush()
