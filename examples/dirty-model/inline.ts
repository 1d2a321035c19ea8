// The same app with the model loaded in every HTTP worker, the layout the
// dirty pool replaces:   corral -w 4 inline.ts
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Model } from './model.ts'

const model = new Model()
model.init()

export default function app(req: IncomingMessage, res: ServerResponse): void {
  const features = (new URL(req.url ?? '/', 'http://x').searchParams.get('x') ?? '0').split(',').map(Number)
  res.end(`${model.predict(features)}\n`)
}
