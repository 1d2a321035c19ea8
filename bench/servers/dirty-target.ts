// The dirty app bench/dirty.ts calls: echo sends its argument back, so a
// round trip carries the payload both ways.
export default {
  echo: (value: unknown) => value,
}
