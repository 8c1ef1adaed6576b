/** A one-line progress bar on stderr (redrawn in place on a terminal, one line per update otherwise). */
export class Progress {
  private last = "";
  constructor(private readonly label: string, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(done: number, total: number, note = ""): void {
    const width = 24;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    const line = `${this.label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}${note ? ` ${note}` : ""}`;
    if (line === this.last) return;
    this.last = line;
    if (this.stream.isTTY) this.stream.write(`\r${line}\x1b[K`);
    else this.stream.write(`${line}\n`);
  }

  end(): void {
    if (this.stream.isTTY && this.last !== "") this.stream.write("\n");
  }
}
