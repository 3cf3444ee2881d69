// The framework ceiling for bench/http.mjs: Hono on @hono/node-server that parses the JSON body
// and answers a small JSON, with nothing else (no middleware, no log, no check).
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.post('/v1/check', async (c) => c.json({ ok: typeof (await c.req.json()) === 'object' }));
serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: '127.0.0.1' });
