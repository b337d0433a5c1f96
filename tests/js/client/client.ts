// A small typed client over the types openapi-typescript generates from the API's OpenAPI
// document (api-schema.d.ts, written by typed-client.mjs). It compiles under --strict only
// if the document is whole and its types are as precise as the server: each
// `@ts-expect-error` below must stay an error, so a parameter documented looser than the
// server accepts (an integer as a string, an enum as any text) fails the check.
import type { components, operations, paths } from "./api-schema";

type Schemas = components["schemas"];
type Problem = Schemas["Problem"];

type TaskQuery = NonNullable<paths["/api/v1/tasks"]["get"]["parameters"]["query"]>;
type TaskPage = paths["/api/v1/tasks"]["get"]["responses"][200]["content"]["application/json"];
type AuditQuery = NonNullable<paths["/api/v1/audit-events"]["get"]["parameters"]["query"]>;

// Operations are addressed by their ids: one name, one operation.
type Login = operations["login"]["requestBody"]["content"]["application/json"];
type Tokens = operations["login"]["responses"][200]["content"]["application/json"];
type NewTask = operations["create_task"]["requestBody"]["content"]["application/json"];
type Task = operations["create_task"]["responses"][201]["content"]["application/json"];
type Ticket = operations["create_upload"]["responses"][201]["content"]["application/json"];

/** Query parameters as a URL: arrays comma-separated (`style: form, explode: false`). */
function toSearch(query: Record<string, string | number | boolean | string[] | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) params.set(name, Array.isArray(value) ? value.join(",") : String(value));
  }
  return params.toString();
}

async function send<T>(base: string, method: string, path: string, token?: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(`${base}${path}`, init);
  if (!response.ok) throw (await response.json()) as Problem;
  return (await response.json()) as T;
}

export const api = (base: string) => ({
  login: (body: Login) => send<Tokens>(base, "POST", "/api/v1/auth/login", undefined, body),
  createTask: (token: string, body: NewTask) => send<Task>(base, "POST", "/api/v1/tasks", token, body),
  listTasks: (token: string, query: TaskQuery) =>
    send<TaskPage>(base, "GET", `/api/v1/tasks?${toSearch(query)}`, token),
  upload: (token: string, file: Blob, filename: string) =>
    send<Ticket>(base, "POST", "/api/v1/uploads", token, {
      filename,
      content_type: file.type,
      size: file.size,
      purpose: "avatar",
    } satisfies Schemas["CreateUpload"]),
});

// The listing's parameters carry the server's types.
export const everyFilter: TaskQuery = {
  status: ["todo", "in_progress"],
  priority: ["high"],
  tag: "home",
  due_before: "2026-12-31T00:00:00Z",
  overdue: true,
  q: "milk",
  sort: "-due_at",
  limit: 50,
};
// @ts-expect-error the page size is an integer
export const limitAsText: TaskQuery = { limit: "50" };
// @ts-expect-error overdue is a boolean
export const overdueAsText: TaskQuery = { overdue: "true" };
// @ts-expect-error sort takes the listed keys only
export const unknownSort: TaskQuery = { sort: "name" };
// @ts-expect-error statuses are the task statuses
export const unknownStatus: TaskQuery = { status: ["someday"] };

export const auditFilter: AuditQuery = { kind: "login_failed", limit: 10 };
// @ts-expect-error audit kinds are the listed ones
export const unknownKind: AuditQuery = { kind: "coffee_break" };

// Responses are typed through to their fields.
export const firstTitle = (page: TaskPage): string | undefined => page.items[0]?.title;
export const nextPage = (page: TaskPage): string | null | undefined => page.next_cursor;
export const problemFields = (problem: Problem) => problem.errors?.map((e) => e.field);
