// Segment arithmetic as liberasurecode and PyECLib do it: alignment of a segment to k words,
// fragment sizes, and get_segment_info, whose numbers Swift uses to size fragment archives.
import { HEADER_SIZE } from './fragment.js';

export interface SegmentInfo {
  segmentSize: number;
  lastSegmentSize: number;
  /** Bytes of one fragment (header included) of a full segment. */
  fragmentSize: number;
  lastFragmentSize: number;
  numSegments: number;
}

/** liberasurecode get_aligned_data_size: the length rounded up to k words. */
export function alignedDataSize(dataLen: number, k: number, w: 8 | 16): number {
  const multiple = k * (w / 8);
  return Math.ceil(dataLen / multiple) * multiple;
}

/** Payload bytes of each fragment of a segment of dataLen bytes (the header's `size`). */
export function blockSize(dataLen: number, k: number, w: 8 | 16): number {
  return alignedDataSize(dataLen, k, w) / k;
}

/** PyECLib get_segment_info, number for number (including its odd answer for dataLen 0). */
export function segmentInfo(dataLen: number, segmentSize: number, k: number, w: 8 | 16): SegmentInfo {
  const minSegmentSize = alignedDataSize(1, k, w);
  let numSegments = Math.ceil(dataLen / segmentSize);
  if (numSegments === 2 && dataLen < segmentSize + minSegmentSize) numSegments--;
  let fragmentSize: number;
  let lastFragmentSize: number;
  let lastSegmentSize: number;
  if (numSegments === 1) {
    fragmentSize = blockSize(dataLen, k, w);
    segmentSize = dataLen;
    lastFragmentSize = fragmentSize;
    lastSegmentSize = dataLen;
  } else {
    fragmentSize = blockSize(segmentSize, k, w);
    lastSegmentSize = dataLen - segmentSize * (numSegments - 1);
    if (lastSegmentSize < minSegmentSize) {
      numSegments--;
      lastSegmentSize += segmentSize;
    }
    lastFragmentSize = blockSize(lastSegmentSize, k, w);
  }
  return {
    segmentSize,
    lastSegmentSize,
    fragmentSize: fragmentSize + HEADER_SIZE,
    lastFragmentSize: lastFragmentSize + HEADER_SIZE,
    numSegments,
  };
}
