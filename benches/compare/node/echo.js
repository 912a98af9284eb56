// A WebSocket echo server with Node's `ws` and its defaults. Usage: node echo.js PORT
const { WebSocketServer } = require('ws');
const port = Number(process.argv[2] || 9000);
const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
