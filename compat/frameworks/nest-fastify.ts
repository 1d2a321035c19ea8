// NestJS 12 on its Fastify adapter: the same project as nest-express.ts
// (ESM, tsc into dist/, the same module, gateway and routes), with what
// Nest's docs give for Fastify: `app.register(compression)` from
// @fastify/compress, @fastify/multipart read through `req.parts()` (Nest's
// FileInterceptor is multer, Express only), and
// `app.listen(process.env.PORT ?? 3000, '0.0.0.0')` as the docs write it
// (Fastify alone listens on localhost only). Under corral that listen() is
// served from corral's listeners (issue 19, deliverable 1).
import type { Framework } from '../framework.ts'
import {
  nestController,
  nestDependencies,
  nestDevDependencies,
  nestGateway,
  nestModule,
  nestTsconfig,
} from './nest-express.ts'

const controller = nestController('nest-fastify', {
  imports: '',
  bodyOf: 'req.raw',
  multipart: `
  @Post('multipart')
  async multipart(@Req() req) {
    const fields = {}
    const files = {}
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        files[part.fieldname] = 0
        for await (const piece of part.file) files[part.fieldname] += piece.length
      } else {
        fields[part.fieldname] = part.value
      }
    }
    return { fields, files }
  }
`,
})

const main = `import 'reflect-metadata'
import compression from '@fastify/compress'
import multipart from '@fastify/multipart'
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { WsAdapter } from '@nestjs/platform-ws'
import { AppModule } from './app.module.js'

async function bootstrap() {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter(), {
    logger: ['error', 'warn'],
  })
  await app.register(compression)
  await app.register(multipart)
  // Bodies that are not JSON, a form or multipart reach /upload unparsed, as a stream.
  app.getHttpAdapter().getInstance().addContentTypeParser('*', (request, payload, done) => done(null))
  app.useWebSocketAdapter(new WsAdapter(app))
  await app.listen(process.env.PORT ?? 3000, '0.0.0.0')
}
bootstrap()
`

const nestFastify: Framework = {
  id: 'nest-fastify',
  title: 'NestJS (Fastify)',
  versionOf: '@nestjs/core',
  dependencies: {
    ...nestDependencies,
    '@nestjs/platform-fastify': '12.6.3',
    '@fastify/compress': '9.2.0',
    '@fastify/multipart': '10.1.9',
  },
  devDependencies: nestDevDependencies,
  files: {
    'tsconfig.json': nestTsconfig,
    'src/main.ts': main,
    'src/app.module.ts': nestModule,
    'src/app.controller.ts': controller,
    'src/echo.gateway.ts': nestGateway,
  },
  build: ['npx', 'tsc', '-p', 'tsconfig.json'],
  entry: 'dist/main.js',
  listensItself: true,
  h2: true,
}
export default nestFastify
