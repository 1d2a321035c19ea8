// NestJS 12 on its Express adapter, written as `nest new` lays a project out
// (Nest 12 scaffolds ESM): src/main.ts bootstraps and calls
// `app.listen(process.env.PORT ?? 3000)` itself, a module, a controller and
// a WebSocket gateway, compiled with tsc into dist/ (the production build;
// `nest build` runs the same tsc, the CLI itself is left out to keep the
// install small). The ecosystem's usual pieces, as Nest's docs give them:
// compression as Express middleware, FileInterceptor's multer for
// multipart, @Sse for the event stream, @nestjs/platform-ws for /ws.
// Under corral that listen() is served from corral's listeners (issue 19,
// deliverable 1).
import type { Framework } from '../framework.ts'

/** The tsconfig `nest new` writes, for an ESM project. */
export const nestTsconfig = `${JSON.stringify(
  {
    compilerOptions: {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2023',
      declaration: false,
      removeComments: true,
      emitDecoratorMetadata: true,
      experimentalDecorators: true,
      sourceMap: true,
      outDir: './dist',
      rootDir: './src',
      skipLibCheck: true,
      strictNullChecks: false,
      noImplicitAny: false,
      types: ['node'],
    },
    include: ['src'],
  },
  null,
  2,
)}\n`

/** The WebSocket gateway on /ws (WsAdapter: plain `ws`, no Socket.IO). */
export const nestGateway = `import { type OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets'
import type { WebSocket } from 'ws'

@WebSocketGateway({ path: '/ws' })
export class EchoGateway implements OnGatewayConnection {
  handleConnection(client: WebSocket) {
    client.send(String(process.pid))
    // An echo of whatever arrives: Nest's @SubscribeMessage handlers take
    // JSON {event, data} messages only.
    client.on('message', (data, isBinary) => client.send(data, { binary: isBinary }))
  }
}
`

export const nestModule = `import { Module } from '@nestjs/common'
import { AppController } from './app.controller.js'
import { EchoGateway } from './echo.gateway.js'

@Module({
  controllers: [AppController],
  providers: [EchoGateway],
})
export class AppModule {}
`

/** What differs between the adapters' controllers. */
interface AdapterParts {
  /** Imports the adapter's own part needs. */
  readonly imports: string
  /** The request body as a stream of Buffers, from the controller's `req`. */
  readonly bodyOf: string
  /** The adapter's POST /multipart handler. */
  readonly multipart: string
}

/** The controller both adapters serve, with each adapter's own body reading. */
export function nestController(id: string, { imports, bodyOf, multipart }: AdapterParts): string {
  return `import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { Controller, Get, Header, type MessageEvent, Post, Query, Req, Sse, StreamableFile } from '@nestjs/common'
import { interval, map, type Observable, startWith } from 'rxjs'
${imports}
const text = 'The quick brown fox jumps over the lazy dog, again and again.\\n'.repeat(1050)
const chunk = Buffer.alloc(64 * 1024, 'x')

async function digest(body: AsyncIterable<Buffer>) {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const part of body) {
    bytes += part.length
    hash.update(part)
  }
  return { bytes, sha256: hash.digest('hex') }
}

@Controller()
export class AppController {
  @Get()
  @Header('content-type', 'text/plain')
  hello(): string {
    return 'hello from ${id}\\n'
  }

  @Get('big')
  big(): StreamableFile {
    const chunks = (function* () {
      for (let i = 0; i < 160; i++) yield chunk
    })()
    return new StreamableFile(Readable.from(chunks), {
      type: 'application/octet-stream',
      length: 160 * chunk.length,
    })
  }

  @Get('text')
  @Header('content-type', 'text/plain')
  text(): string {
    return text
  }

  @Post('upload')
  upload(@Req() req): Promise<{ bytes: number; sha256: string }> {
    return digest(${bodyOf})
  }

  @Get('throw')
  throw(): never {
    throw new Error('thrown on purpose by /throw')
  }

  @Get('slow')
  @Header('content-type', 'text/plain')
  async slow(@Query('ms') ms?: string): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, Number(ms ?? 1000)))
    return 'slow done'
  }

  @Get('pid')
  @Header('content-type', 'text/plain')
  pid(): string {
    return String(process.pid)
  }

  @Get('whoami')
  whoami(@Req() req) {
    return { ip: req.ip, protocol: req.protocol, pid: process.pid }
  }

  @Sse('sse')
  sse(): Observable<MessageEvent> {
    return interval(200).pipe(
      startWith(0),
      map(() => ({ data: String(process.pid) })),
    )
  }
${multipart}}
`
}

const controller = nestController('nest-express', {
  imports: `import { UploadedFiles, UseInterceptors } from '@nestjs/common'
import { AnyFilesInterceptor } from '@nestjs/platform-express'
`,
  bodyOf: 'req',
  multipart: `
  @Post('multipart')
  @UseInterceptors(AnyFilesInterceptor())
  multipart(@Req() req, @UploadedFiles() uploaded: Array<{ fieldname: string; size: number }>) {
    const files = {}
    for (const file of uploaded ?? []) files[file.fieldname] = file.size
    return { fields: { ...req.body }, files }
  }
`,
})

const main = `import 'reflect-metadata'
import { NestFactory } from '@nestjs/core'
import type { NestExpressApplication } from '@nestjs/platform-express'
import { WsAdapter } from '@nestjs/platform-ws'
import compression from 'compression'
import { AppModule } from './app.module.js'

async function bootstrap() {
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger: ['error', 'warn'] })
  app.use(compression())
  app.useWebSocketAdapter(new WsAdapter(app))
  await app.listen(process.env.PORT ?? 3000)
}
bootstrap()
`

/** The packages every Nest app here has, whatever its adapter. */
export const nestDependencies = {
  '@nestjs/common': '12.6.3',
  '@nestjs/core': '12.6.3',
  '@nestjs/websockets': '12.1.1',
  '@nestjs/platform-ws': '12.1.1',
  'reflect-metadata': '0.2.2',
  rxjs: '7.8.2',
  ws: '8.23.1',
}
export const nestDevDependencies = {
  typescript: '6.0.3',
  '@types/node': '24.19.4',
  '@types/ws': '8.18.2',
}

const nestExpress: Framework = {
  id: 'nest-express',
  title: 'NestJS (Express)',
  versionOf: '@nestjs/core',
  dependencies: { ...nestDependencies, '@nestjs/platform-express': '12.6.3', compression: '1.8.2' },
  devDependencies: { ...nestDevDependencies, '@types/express': '5.0.6', '@types/compression': '1.8.1' },
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
  h2: false,
  notApplicable: {
    h2: 'Express gives each request node:http’s prototype, which breaks on node:http2’s compatibility objects (expressjs/express#3388)',
  },
}
export default nestExpress
