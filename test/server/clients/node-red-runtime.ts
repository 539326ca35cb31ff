/**
 * The part of Node-RED's runtime API a node package uses (`RED.nodes.createNode`, `getNode`,
 * `registerType`; a node's `on('input')`, `send`, `status`, `error`), enough to load a real node
 * package such as node-red-contrib-deepstack and feed it messages. Node-RED itself with
 * node-red-node-test-helper measured 129 MB / 319 packages (node-red 5.0.7, helper 0.3.6), a third
 * of this project's node_modules, for one test: this runtime stands in for it.
 */
import { EventEmitter } from 'node:events';

export type NodeMessage = Record<string, unknown>;
type NodeConstructor = new (config: Record<string, unknown>) => object;

/**
 * What Node-RED's Node base class gives every node (the subset node packages call). A node type's
 * constructor never runs this class's constructor (Node-RED calls `createNode` instead), so its
 * state is set there.
 */
export class RuntimeNode extends EventEmitter {
  declare id: string;
  declare type: string;
  declare credentials: Record<string, string>;

  status(status: Record<string, string>): void {
    this.emit('runtime:status', status);
  }

  send(output: unknown): void {
    this.emit('runtime:send', output);
  }

  error(reason: unknown): void {
    this.emit('runtime:error', reason);
  }
}

export class NodeRedRuntime {
  private readonly types = new Map<string, NodeConstructor>();
  private readonly instances = new Map<string, RuntimeNode>();
  private readonly credentials = new Map<string, Record<string, string>>();
  private readonly statusResets: Array<Promise<void>> = [];

  /** The `RED` object handed to a node module. */
  readonly red = {
    nodes: {
      createNode: (node: RuntimeNode, config: Record<string, unknown>): void => {
        EventEmitter.call(node);
        node.id = String(config.id);
        node.type = String(config.type);
        node.credentials = this.credentials.get(node.id) ?? {};
      },
      getNode: (id: string): RuntimeNode | undefined => this.instances.get(id),
      registerType: (type: string, nodeType: NodeConstructor): void => {
        // Node-RED makes every node type inherit from its Node class (util.inherits)
        Object.setPrototypeOf(nodeType.prototype, RuntimeNode.prototype);
        this.types.set(type, nodeType);
      },
    },
  };

  /** Loads a node module (`module.exports = function (RED) { … }`). */
  load(module: (red: NodeRedRuntime['red']) => void): void {
    module(this.red);
  }

  /** Deploys one node of a registered type, as a flow would. */
  deploy(config: Record<string, unknown> & { id: string; type: string }, credentials: Record<string, string> = {}): RuntimeNode {
    const NodeType = this.types.get(config.type);
    if (NodeType === undefined) throw new Error(`node type '${config.type}' is not registered; load its module first`);
    this.credentials.set(config.id, credentials);
    const node = new NodeType(config) as RuntimeNode;
    this.instances.set(config.id, node);
    return node;
  }

  /** Resolves once every node that answered has set its status back to idle (its timer has run). */
  async idle(): Promise<void> {
    await Promise.all(this.statusResets);
  }

  /** Sends `msg` to the node's input; resolves with what it sends, rejects with what it reports as an error. */
  input(node: RuntimeNode, msg: NodeMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const onSend = (output: unknown): void => {
        node.off('runtime:error', onError);
        // node-red-contrib-deepstack's nodes set their status back to "idling" 2 s after a success
        this.statusResets.push(
          new Promise<void>((settle) => {
            const onStatus = (status: Record<string, string>): void => {
              if (status.text !== 'idling') return;
              node.off('runtime:status', onStatus);
              settle();
            };
            node.on('runtime:status', onStatus);
          }),
        );
        resolve(output);
      };
      const onError = (reason: unknown): void => {
        node.off('runtime:send', onSend);
        reject(reason);
      };
      node.once('runtime:send', onSend);
      node.once('runtime:error', onError);
      node.emit(
        'input',
        msg,
        (output: unknown) => node.send(output),
        () => undefined,
      );
    });
  }
}
