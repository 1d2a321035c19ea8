// The HTTP side with the model in the dirty pool:
//   corral -w 4 --dirty-app model=./model.ts:Model:1 app.ts
// GET /predict?x=0.1,0.2,0.3 answers the model's score.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { dirty } from 'corral'
import type { Model } from './model.ts'

const model = dirty<typeof Model>('model', { timeout: 5 })

export default async function app(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const features = (new URL(req.url ?? '/', 'http://x').searchParams.get('x') ?? '0').split(',').map(Number)
  try {
    res.end(`${await model.call('predict', features)}\n`)
  } catch (err) {
    res.writeHead(503).end(`${(err as Error).message}\n`)
  }
}
