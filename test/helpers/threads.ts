// What the kernel says of a process's threads.
import { readdirSync, readFileSync } from 'node:fs';

/** nice values of every thread of a process, from /proc/<pid>/task/<tid>/stat (field 19) */
export function threadNice(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}
