// Drop a WAV saved by Save WAV (Image to Ambient Audio) on the ComfyUI canvas to get its workflow back.
//
// Save WAV embeds {"ambient": {...}, "workflow": <UI graph>, "prompt": <API graph>} as JSON in the comment (ICMT)
// of a standard RIFF LIST/INFO chunk. The frontend reads workflows from PNG, WebP, FLAC, MP3, Ogg and video files,
// not WAV, so this extension wraps app.handleFile, the function the frontend calls for a file dropped on the page,
// chosen with Workflow > Open, or dragged in from a URL: a WAV that carries a workflow (or an API prompt) loads it;
// anything else goes on to the frontend's own handling, unchanged. Dropping a WAV onto a node that takes files
// (Load Audio) still uploads it to that node (the frontend handles that before calling handleFile), and pasting
// (Ctrl+V) still makes a Load Audio node, as core does for every pasted image or audio file.
import { app } from "../../scripts/app.js";

const EXTENSION = "ImageToAmbientAudio.WavWorkflowDrop";
const WAV_TYPES = ["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"];

function isWav(file) {
  return !!file && (WAV_TYPES.includes(file.type) || /\.wave?$/i.test(file.name || ""));
}

async function readBytes(file, start, length) {
  return new Uint8Array(await file.slice(start, start + length).arrayBuffer());
}

function fourCC(bytes, at) {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

function u32(bytes, at) {
  return new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, true);
}

// The INFO fields of a RIFF/WAVE file ({ICMT: "...", INAM: "...", ...}), or null when it is not one. Reads only
// the chunk headers and the LIST chunks: the audio itself (possibly an hour of it) is skipped, never loaded.
export async function readWavInfo(file) {
  const head = await readBytes(file, 0, 12);
  if (head.length < 12 || fourCC(head, 0) !== "RIFF" || fourCC(head, 8) !== "WAVE") return null;
  const fields = {};
  let pos = 12;
  while (pos + 8 <= file.size) {
    const header = await readBytes(file, pos, 8);
    const id = fourCC(header, 0);
    const size = u32(header, 4);
    if (id === "LIST" && size >= 4) {
      const body = await readBytes(file, pos + 8, size);
      if (fourCC(body, 0) === "INFO") {
        for (let at = 4; at + 8 <= body.length; ) {
          const key = fourCC(body, at);
          const n = u32(body, at + 4);
          let text = body.subarray(at + 8, Math.min(at + 8 + n, body.length));
          const nul = text.indexOf(0);
          if (nul >= 0) text = text.subarray(0, nul);
          fields[key] = new TextDecoder("utf-8").decode(text);
          at += 8 + n + (n % 2);
        }
      }
    }
    pos += 8 + size + (size % 2);
  }
  return fields;
}

// {workflow, prompt} from the WAV's ICMT JSON, or null when the file carries neither.
export async function readWavWorkflow(file) {
  const info = await readWavInfo(file);
  if (!info || !info.ICMT || info.ICMT[0] !== "{") return null;
  let meta;
  try {
    meta = JSON.parse(info.ICMT);
  } catch (e) {
    return null;
  }
  const workflow = meta && typeof meta.workflow === "object" && !Array.isArray(meta.workflow) ? meta.workflow : null;
  const prompt = meta && typeof meta.prompt === "object" && !Array.isArray(meta.prompt) ? meta.prompt : null;
  return workflow || prompt ? { workflow, prompt } : null;
}

app.registerExtension({
  name: EXTENSION,
  async setup() {
    const original = app.handleFile;
    if (typeof original !== "function" || original.__ambientWav) return;
    const handleFile = async function (file, openSource, ...rest) {
      if (isWav(file)) {
        let found = null;
        try {
          found = await readWavWorkflow(file);
        } catch (e) {
          console.warn(`[${EXTENSION}] could not read ${file.name}:`, e);
        }
        const name = (file.name || "").replace(/\.\w+$/, "");
        try {
          if (found?.workflow && Array.isArray(found.workflow.nodes)) {
            await app.loadGraphData(found.workflow, true, true, name, { openSource });
            return;
          }
          if (found?.prompt && typeof app.loadApiJson === "function") {
            app.loadApiJson(found.prompt, name);
            return;
          }
        } catch (e) {
          console.error(`[${EXTENSION}] could not load the workflow of ${file.name}:`, e);
        }
      }
      return original.call(this ?? app, file, openSource, ...rest);
    };
    handleFile.__ambientWav = true;
    app.handleFile = handleFile;
    // Workflow > Open: let the file picker offer WAV files too (the frontend's own list has FLAC, not WAV).
    const input = document.getElementById("comfy-file-input");
    if (input && input.accept && !input.accept.includes(".wav")) input.accept += ",.wav,audio/wav";
  },
});
