"""Typed web3.py client for the OpenChat contracts (PaymentChannels, ContributionRegistry,
MockStablecoin, TopUps).

Every transaction is signed locally by an eth-account ``LocalAccount`` and sent raw, so the
same code runs against eth-tester (py-evm), anvil and any JSON-RPC node. Transactions of one
client are serialised behind a lock and each waits for its receipt: one signer, one nonce
sequence. A revert raises :class:`ContractRevert` carrying the contract's custom error name
and arguments. Money is integer base units everywhere.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from payouts import vouchers
from payouts.merkle import ContributionLeaf

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "contracts" / "artifacts"
CONTRACT_NAMES = ("MockStablecoin", "PaymentChannels", "ContributionRegistry", "TopUps")
DEPOSITED_TOPIC = keccak(text="Deposited(bytes32,address,uint256)")
UINT128_MAX = 2**128 - 1
UINT256_MAX = 2**256 - 1


class ChainError(RuntimeError):
    """A transaction could not be sent or did not succeed."""


class ContractRevert(ChainError):
    """A call reverted with a decoded custom error (``name``, ``args``) or a raw reason."""

    def __init__(self, name: str, args: dict[str, Any], data: str = ""):
        self.name = name
        self.args_dict = args
        self.data = data
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in args.items())
        super().__init__(f"{name}({rendered})")


def _render(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------ artifacts


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The committed compiler artifact (abi, bytecode, compiler settings) of a contract."""
    if name not in CONTRACT_NAMES:
        raise KeyError(name)
    return json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())


@cache
def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in CONTRACT_NAMES:
        for item in load_artifact(name)["abi"]:
            if item["type"] != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            table[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return table


def decode_revert(data: str | bytes) -> ContractRevert:
    """Decode revert data into the custom error of any of our contracts (or OZ's)."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    entry = _error_table().get(raw[:4])
    if entry is None:
        return ContractRevert("UnknownRevert", {"data": raw}, "0x" + raw.hex())
    name, names, types = entry
    values = [
        to_checksum_address(v) if t == "address" else v
        for t, v in zip(types, abi_decode(types, raw[4:]), strict=True)
    ]
    return ContractRevert(name, dict(zip(names, values, strict=True)), "0x" + raw.hex())


# ------------------------------------------------------------------- records


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live on one chain (persisted as the deployment JSON file)."""

    chain_id: int
    token: str
    channels: str
    registry: str
    hub: str
    challenge_period: int
    deploy_block: int
    code_hashes: dict[str, str] = field(default_factory=dict)
    # Hash of block ``deploy_block``: the chain state the contracts live in. A reset anvil
    # redeploys at the SAME addresses (same hub key, same nonces), so chain id + address alone
    # cannot tell the two deployments apart; this hash can. "" in files written before it.
    deploy_block_hash: str = ""
    # TopUps (askers' on-chain deposits) and the block it was deployed in: the deposit follower
    # reads its logs from there. "" / 0 in files written before it existed (deploy adds it).
    topups: str = ""
    topups_block: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def addresses(self) -> dict[str, str]:
        """Role -> address of the hub and every contract deployed (none of them can be a payee)."""
        out = {"hub": self.hub, "token": self.token, "channels": self.channels, "registry": self.registry}
        if self.topups:
            out["topups"] = self.topups
        return out

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        data = json.loads(text)
        for key in ("token", "channels", "registry", "hub", "topups"):
            if data.get(key):
                data[key] = to_checksum_address(data[key])
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        return cls.from_json(path.read_text())


@dataclass(frozen=True)
class DeploymentKey:
    """What a ledger amount is bound to: the PaymentChannels contract on one chain, in one chain
    state (the hash of the deployment's block). Vouchers are cumulative per channel of ONE such
    deployment; a channel of another deployment has paid nothing of them."""

    chain_id: int
    contract: str
    deploy_block: int
    deploy_block_hash: str

    def label(self) -> str:
        return f"chain {self.chain_id}, PaymentChannels {self.contract}, block {self.deploy_block} {self.deploy_block_hash[:10]}…"


@dataclass(frozen=True)
class DepositLog:
    """One ``Deposited`` log of the TopUps contract, as the node reported it."""

    chain_id: int
    contract: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    account_ref: str  # 0x + 64 hex: the account's deposit reference
    sender: str
    amount: int  # uint256 as logged (the ledger bounds it)


@dataclass(frozen=True)
class ChannelState:
    channel_id: bytes
    payer: str
    receiver: str
    deposited: int
    paid: int
    closes_at: int
    settled: bool

    @property
    def exists(self) -> bool:
        return int(self.payer, 16) != 0

    @property
    def status(self) -> str:
        if not self.exists:
            return "none"
        if self.settled:
            return "settled"
        return "closing" if self.closes_at else "open"

    @property
    def remaining(self) -> int:
        """Deposit not yet paid out."""
        return self.deposited - self.paid


@dataclass(frozen=True)
class Batch:
    batch_id: int
    root: bytes
    leaf_count: int
    anchored_at: int


def _money(value: int, *, maximum: int = UINT128_MAX, name: str = "amount") -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer of base units, got {value!r}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} out of range: {value}")
    return value


# -------------------------------------------------------------------- sending


class TxSender:
    """Signs and sends transactions for local accounts, one at a time, waiting for receipts.

    By default each transaction's gas is estimated first, which also surfaces a revert (decoded
    to :class:`ContractRevert`) before anything is paid. With ``fixed_gas`` (dev chains, tests)
    the estimate is skipped; a transaction that reverts on chain is then replayed as a call on
    its parent block to decode the reason, and raised the same way.
    """

    def __init__(
        self,
        w3: Web3,
        *,
        timeout: float = 120.0,
        gas_margin: float = 1.2,
        fixed_gas: int | None = None,
    ):
        self.w3 = w3
        self.timeout = timeout
        self.gas_margin = gas_margin
        self.fixed_gas = fixed_gas
        self._lock = threading.Lock()
        self._chain_id: int | None = None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.w3.eth.chain_id
        return self._chain_id

    def _fees(self) -> dict[str, int]:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        tip = 1_000_000_000
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}

    def send(
        self, account: LocalAccount, tx: dict[str, Any], *, gas: int | None = None
    ) -> TxReceipt:
        """Sign ``tx`` as ``account``, send it, wait for the receipt; raise on revert."""
        with self._lock:
            tx = {**tx, "from": account.address, "chainId": self.chain_id, **self._fees()}
            tx["nonce"] = self.w3.eth.get_transaction_count(account.address, "pending")
            gas = gas or self.fixed_gas
            if gas is None:
                try:
                    estimate = self.w3.eth.estimate_gas(tx)
                except Exception as exc:  # providers differ in what they raise
                    raise _as_revert(exc) from exc
                gas = int(estimate * self.gas_margin) + 10_000
            tx["gas"] = gas
            signed = account.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout)
        if receipt["status"] != 1:
            self._raise_revert_of(tx, receipt["blockNumber"] - 1)
            raise ChainError(f"transaction 0x{bytes(tx_hash).hex()} failed (status 0)")
        return receipt

    def _raise_revert_of(self, tx: dict[str, Any], block_number: int) -> None:
        """Replay a failed transaction as a call on its parent block and raise its revert."""
        call = {
            "from": tx["from"],
            "data": tx["data"] if isinstance(tx["data"], str) else "0x" + bytes(tx["data"]).hex(),
            "gas": hex(tx["gas"]),
        }
        if tx.get("to"):
            call["to"] = tx["to"]
        try:
            if isinstance(self.w3.provider, EthereumTesterProvider):
                self.w3.eth.call({**call, "gas": tx["gas"]}, block_number)
                return
            # raw JSON-RPC: web3.py's formatted error path costs ~20 ms per revert
            response = self.w3.provider.make_request("eth_call", [call, hex(block_number)])
        except Exception as exc:  # eth-tester raises; JSON-RPC nodes answer with an error
            raise _as_revert(exc) from exc
        error = response.get("error") if isinstance(response, dict) else None
        if error:
            data = _revert_data(_RpcError(error))
            raise decode_revert(data) if data else ContractRevert("Revert", {"reason": str(error)})


class _RpcError(Exception):
    def __init__(self, error: Any):
        super().__init__(str(error))
        self.data = error.get("data") if isinstance(error, dict) else None


def _revert_data(exc: BaseException) -> str:
    """The raw revert data of a failed call, from a JSON-RPC node's error (``exc.data``) or from
    eth-tester's exception chain (py-evm's ``Revert`` carries the bytes)."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        data = getattr(node, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, bytes | bytearray) and data:
            return "0x" + bytes(data).hex()
        if isinstance(data, str) and data.startswith("0x") and len(data) > 2:
            return data
        if node.args and isinstance(node.args[0], bytes | bytearray) and node.args[0]:
            return "0x" + bytes(node.args[0]).hex()
        if node.args and isinstance(node.args[0], str):
            # eth-tester flattens py-evm's Revert into "execution reverted: b'...'".
            literal = _bytes_literal(node.args[0])
            if literal:
                return "0x" + literal.hex()
        node = node.__cause__ or node.__context__
    return ""


def _bytes_literal(text: str) -> bytes:
    """The bytes of a Python ``b'...'`` / ``b"..."`` literal that a message ends with."""
    for marker in ("reverted: ", ""):
        start = text.find(marker)
        if start == -1:
            continue
        tail = text[start + len(marker) :].strip()
        if tail[:2] in ("b'", 'b"'):
            try:
                value = ast.literal_eval(tail)
            except (ValueError, SyntaxError):
                return b""
            return value if isinstance(value, bytes) else b""
    return b""


def _as_revert(exc: BaseException) -> Exception:
    data = _revert_data(exc)
    if data:
        return decode_revert(data)
    if isinstance(exc, ContractLogicError) or "revert" in str(exc).lower():
        return ContractRevert("Revert", {"reason": str(exc)})
    return exc if isinstance(exc, Exception) else ChainError(str(exc))


def deploy_contract(
    sender: TxSender, account: LocalAccount, name: str, *args: Any
) -> tuple[str, TxReceipt]:
    """Deploy a contract from its committed artifact; returns (address, receipt)."""
    art = load_artifact(name)
    factory = sender.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    data = factory.constructor(*args).data_in_transaction
    receipt = sender.send(account, {"data": data})
    address = receipt["contractAddress"]
    if not address:
        raise ChainError(f"deploying {name}: no contract address in receipt")
    return to_checksum_address(address), receipt


# --------------------------------------------------------------------- client


class ChainClient:
    """The OpenChat contracts on one chain, operated by the hub account."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        hub: LocalAccount | str,
        *,
        tx_timeout: float = 120.0,
        fixed_gas: int | None = None,
    ):
        self.w3 = w3
        self.deployment = deployment
        self.hub: LocalAccount = hub if isinstance(hub, LocalAccount) else Account.from_key(hub)
        self.sender = TxSender(w3, timeout=tx_timeout, fixed_gas=fixed_gas)
        self.token = w3.eth.contract(
            address=deployment.token, abi=load_artifact("MockStablecoin")["abi"]
        )
        self.channels = w3.eth.contract(
            address=deployment.channels, abi=load_artifact("PaymentChannels")["abi"]
        )
        self.registry = w3.eth.contract(
            address=deployment.registry, abi=load_artifact("ContributionRegistry")["abi"]
        )
        self.topups = (w3.eth.contract(address=deployment.topups, abi=load_artifact("TopUps")["abi"])
                       if deployment.topups else None)
        self._key: DeploymentKey | None = None

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        deployment: Deployment,
        hub_private_key: str,
        *,
        tx_timeout: float = 120.0,
    ) -> ChainClient:
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        client = cls(w3, deployment, hub_private_key, tx_timeout=tx_timeout)
        if client.chain_id != deployment.chain_id:
            raise ChainError(
                f"node chain id {client.chain_id} != deployment chain id {deployment.chain_id}"
            )
        return client

    @property
    def chain_id(self) -> int:
        return self.sender.chain_id

    def block_hash(self, number: int) -> str | None:
        """0x-hash of block ``number`` on this node (None: the node has no such block)."""
        try:
            block = self.w3.eth.get_block(int(number))
        except Exception:  # noqa: BLE001 - web3 raises BlockNotFound, providers differ
            return None
        return "0x" + bytes(block["hash"]).hex()

    def deployment_key(self) -> DeploymentKey:
        """The deployment this client pays on. Raises :class:`ChainError` when the node's block at
        ``deploy_block`` is not the one the deployment file recorded (the chain was reset, or it
        is another chain with the same id): paying there from this file would pay again."""
        if self._key is None:
            d = self.deployment
            live = self.block_hash(d.deploy_block)
            if live is None:
                raise ChainError(f"the node has no block {d.deploy_block}, where the deployment file says the "
                                 "contracts were deployed: the chain was reset; redeploy (python -m payouts.deploy)")
            if d.deploy_block_hash and d.deploy_block_hash.lower() != live:
                raise ChainError(f"block {d.deploy_block} on the node is {live}, the deployment file recorded "
                                 f"{d.deploy_block_hash}: the chain was reset or is another chain; "
                                 "redeploy (python -m payouts.deploy)")
            self._key = DeploymentKey(self.chain_id, d.channels, d.deploy_block, live)
        return self._key

    def is_live(self, chain_id: int, contract: str, deploy_block: int | None, deploy_block_hash: str | None) -> bool:
        """True when that deployment's PaymentChannels is on this node: same chain id, same block
        hash at its deployment block, code at its address (its vouchers can still be cashed)."""
        if chain_id != self.chain_id or deploy_block is None or not deploy_block_hash:
            return False
        if self.block_hash(deploy_block) != deploy_block_hash.lower():
            return False
        return bool(self.w3.eth.get_code(to_checksum_address(contract)))

    def for_channels(self, contract: str) -> ChainClient:
        """The same node, hub and transaction sender (one nonce sequence) on another
        PaymentChannels contract: an older deployment on this chain whose vouchers are still
        being paid."""
        if to_checksum_address(contract) == self.deployment.channels:
            return self
        other = copy.copy(self)
        other.deployment = replace(self.deployment, channels=to_checksum_address(contract))
        other.channels = self.w3.eth.contract(
            address=other.deployment.channels, abi=load_artifact("PaymentChannels")["abi"])
        other._key = None
        return other

    def known_addresses(self) -> dict[str, str]:
        """The deployment's addresses plus the payer actually signing (the hub key in use)."""
        return {**self.deployment.addresses(), "payer": self.hub.address}

    def _send(self, fn: Any, account: LocalAccount | None = None) -> TxReceipt:
        account = account or self.hub
        tx = {"to": fn.address, "data": fn._encode_transaction_data()}
        return self.sender.send(account, tx)

    def _call(self, fn: Any) -> Any:
        try:
            return fn.call()
        except Exception as exc:  # providers differ in what they raise
            raise _as_revert(exc) from exc

    # ------------------------------------------------------------ token

    def token_balance(self, owner: str) -> int:
        return int(self.token.functions.balanceOf(to_checksum_address(owner)).call())

    def token_allowance(self, owner: str, spender: str | None = None) -> int:
        spender = spender or self.deployment.channels
        return int(self.token.functions.allowance(to_checksum_address(owner), spender).call())

    def token_decimals(self) -> int:
        return int(self.token.functions.decimals().call())

    def approve(
        self, amount: int, spender: str | None = None, account: LocalAccount | None = None
    ) -> TxReceipt:
        """Allow ``spender`` (default: the channels contract) to pull ``amount`` from the account."""
        amount = _money(amount, maximum=UINT256_MAX)
        return self._send(
            self.token.functions.approve(spender or self.deployment.channels, amount), account
        )

    def mint(self, to: str, amount: int) -> TxReceipt:
        """Mint mock-stablecoin (the hub must own the token: dev chains only)."""
        return self._send(
            self.token.functions.mint(to_checksum_address(to), _money(amount, maximum=UINT256_MAX))
        )

    def transfer(self, to: str, amount: int, account: LocalAccount | None = None) -> TxReceipt:
        return self._send(
            self.token.functions.transfer(
                to_checksum_address(to), _money(amount, maximum=UINT256_MAX)
            ),
            account,
        )

    # --------------------------------------------------------- channels

    def channel_id(self, receiver: str, payer: str | None = None) -> bytes:
        return vouchers.channel_id(payer or self.hub.address, receiver)

    def get_channel(self, channel_id: bytes) -> ChannelState:
        c = self.channels.functions.getChannel(channel_id).call()
        deposited, paid, payer, closes_at, settled, receiver = c
        return ChannelState(
            channel_id=bytes(channel_id),
            payer=to_checksum_address(payer),
            receiver=to_checksum_address(receiver),
            deposited=int(deposited),
            paid=int(paid),
            closes_at=int(closes_at),
            settled=bool(settled),
        )

    def open_channel(
        self, receiver: str, deposit: int, account: LocalAccount | None = None
    ) -> tuple[bytes, TxReceipt]:
        """Open (or re-open after settle) the channel to ``receiver`` with ``deposit``.
        The payer must have approved the channels contract for the deposit."""
        account = account or self.hub
        fn = self.channels.functions.open(to_checksum_address(receiver), _money(deposit))
        receipt = self._send(fn, account)
        return vouchers.channel_id(account.address, receiver), receipt

    def top_up(
        self, channel_id: bytes, amount: int, account: LocalAccount | None = None
    ) -> TxReceipt:
        return self._send(self.channels.functions.topUp(channel_id, _money(amount)), account)

    def push_payments(
        self, payments: Iterable[tuple[str, int]], account: LocalAccount | None = None
    ) -> TxReceipt:
        """Pay many of the payer's channels up to cumulative amounts, in one transaction.
        ``payments`` are (receiver, cumulative amount) pairs."""
        entries = [
            (to_checksum_address(r), _money(a, name="cumulative amount")) for r, a in payments
        ]
        return self._send(self.channels.functions.pushPayments(entries), account)

    def close_channel(self, channel_id: bytes, account: LocalAccount | None = None) -> TxReceipt:
        return self._send(self.channels.functions.close(channel_id), account)

    def settle(self, channel_id: bytes, account: LocalAccount | None = None) -> TxReceipt:
        return self._send(self.channels.functions.settle(channel_id), account)

    def claim(self, voucher: vouchers.SignedVoucher, receiver: LocalAccount) -> TxReceipt:
        """Cash a voucher as its channel's receiver (what a contributor's wallet does)."""
        fn = self.channels.functions.claim(
            voucher.channel_id,
            _money(voucher.cumulative_amount, maximum=UINT256_MAX),
            voucher.signature,
        )
        return self._send(fn, receiver)

    def sign_voucher(self, channel_id: bytes, cumulative_amount: int) -> vouchers.SignedVoucher:
        """A voucher signed by the hub for this chain and channels contract."""
        return vouchers.sign_voucher(
            self.hub.key, self.chain_id, self.deployment.channels, channel_id, cumulative_amount
        )

    def voucher_typed_data(self, channel_id: bytes, cumulative_amount: int) -> dict[str, Any]:
        return vouchers.voucher_typed_data(
            self.chain_id, self.deployment.channels, channel_id, cumulative_amount
        )

    def voucher_digest_onchain(self, channel_id: bytes, cumulative_amount: int) -> bytes:
        return bytes(self.channels.functions.voucherDigest(channel_id, cumulative_amount).call())

    def latest_block(self) -> tuple[int, int]:
        """(number, timestamp) of the node's latest block: the clock a challenge period runs on."""
        block = self.w3.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

    def settle_log(self, channel_id: bytes, from_block: int, *, last: bool = False) -> tuple[int, str, int] | None:
        """(refund, tx hash, block) of the first (``last``: the latest) ``ChannelSettled`` of the
        channel at or after ``from_block``, or None: what a settle returned to the payer, even when
        the run that sent it died before recording it."""
        logs = self.channels.events.ChannelSettled().get_logs(
            argument_filters={"channelId": channel_id}, from_block=int(from_block))
        if not logs:
            return None
        log = (max if last else min)(logs, key=lambda e: (e["blockNumber"], e["logIndex"]))
        return int(log["args"]["refund"]), "0x" + bytes(log["transactionHash"]).hex(), int(log["blockNumber"])

    def challenge_period(self) -> int:
        return int(self.channels.functions.challengePeriod().call())

    def _channel_event_types(self) -> dict[bytes, Any]:
        """topic 0 -> the PaymentChannels event type it is the signature of."""
        by_topic = {}
        for item in self.channels.abi:
            if item["type"] == "event":
                sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                by_topic[keccak(text=sig)] = getattr(self.channels.events, item["name"])
        return by_topic

    def channel_history(self, channel_ids: Sequence[bytes], from_block: int, *,
                        per_call: int = 100) -> dict[bytes, list[dict[str, Any]]]:
        """Every PaymentChannels event of these channels from ``from_block`` to the head, oldest
        first, by channel: ``{"event", "block", "log_index", "tx_hash", **its arguments}``. Every
        event's first indexed topic is the channel id, so one ``eth_getLogs`` serves ``per_call``
        channels."""
        by_topic = self._channel_event_types()
        out: dict[bytes, list[dict[str, Any]]] = {bytes(c): [] for c in channel_ids}
        ids = list(out)
        for i in range(0, len(ids), per_call):
            logs = self.w3.eth.get_logs({"address": self.deployment.channels, "fromBlock": int(from_block),
                                         "toBlock": "latest",
                                         "topics": [None, ["0x" + c.hex() for c in ids[i:i + per_call]]]})
            for log in logs:
                event = by_topic.get(bytes(log["topics"][0])) if log["topics"] else None
                if event is None:
                    continue
                decoded = event().process_log(log)
                args = dict(decoded["args"])
                out[bytes(args["channelId"])].append({
                    "event": decoded["event"], "block": int(log["blockNumber"]), "log_index": int(log["logIndex"]),
                    "tx_hash": "0x" + bytes(log["transactionHash"]).hex(), **args})
        for events in out.values():
            events.sort(key=lambda e: (e["block"], e["log_index"]))
        return out

    def token_transfers(self, tx_hash: str) -> list[tuple[str, str, int]]:
        """(from, to, amount) of each ERC-20 ``Transfer`` of this PaymentChannels contract's token
        in the transaction's receipt (empty when the node has no such transaction)."""
        token = to_checksum_address(self.channels.functions.token().call())
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        except Exception:  # noqa: BLE001 - web3 raises TransactionNotFound, providers differ
            return []
        topic = keccak(text="Transfer(address,address,uint256)")
        out = []
        for log in receipt["logs"]:
            topics = [bytes(t) for t in log["topics"]]
            if to_checksum_address(log["address"]) != token or len(topics) != 3 or topics[0] != topic:
                continue
            out.append((to_checksum_address(topics[1][-20:]), to_checksum_address(topics[2][-20:]),
                        int.from_bytes(bytes(log["data"]), "big")))
        return out

    def channel_events(self, receipt: TxReceipt) -> list[dict[str, Any]]:
        """Decoded PaymentChannels events of a receipt: [{event, channelId, ...}, ...]."""
        by_topic = self._channel_event_types()
        out = []
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) != self.deployment.channels or not log["topics"]:
                continue
            event = by_topic.get(bytes(log["topics"][0]))
            if event is not None:
                decoded = event().process_log(log)
                out.append({"event": decoded["event"], **dict(decoded["args"])})
        return out

    # ----------------------------------------------------------- top-ups

    def deposit(self, account_ref: bytes, amount: int, account: LocalAccount) -> TxReceipt:
        """Deposit ``amount`` for an account reference as ``account`` (what an asker's wallet
        does; it must have approved the TopUps contract)."""
        if self.topups is None:
            raise ChainError("the deployment has no TopUps contract: run python -m payouts.deploy")
        return self._send(self.topups.functions.deposit(bytes(account_ref), _money(amount, maximum=UINT256_MAX)),
                          account)

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def deposit_logs(self, from_block: int, to_block: int) -> list[DepositLog]:
        """Every ``Deposited`` log of the TopUps contract in the block range (inclusive)."""
        if self.topups is None or from_block > to_block:
            return []
        raw = self.w3.eth.get_logs({"address": self.deployment.topups, "topics": ["0x" + DEPOSITED_TOPIC.hex()],
                                    "fromBlock": int(from_block), "toBlock": int(to_block)})
        return [self._deposit_log(log) for log in raw if not log.get("removed")]

    def _deposit_log(self, log: Any) -> DepositLog:
        topics = [bytes(t) for t in log["topics"]]
        return DepositLog(
            chain_id=self.chain_id, contract=to_checksum_address(log["address"]),
            tx_hash="0x" + bytes(log["transactionHash"]).hex(), log_index=int(log["logIndex"]),
            block_number=int(log["blockNumber"]), block_hash="0x" + bytes(log["blockHash"]).hex(),
            account_ref="0x" + topics[1].hex(), sender=to_checksum_address(topics[2][12:]),
            amount=int.from_bytes(bytes(log["data"])[:32], "big"))

    def deposit_log_in_receipt(self, tx_hash: str, log_index: int, contract: str | None = None) -> DepositLog | None:
        """The tx's ``Deposited`` log (of ``contract``, default the deployment's TopUps) at
        ``log_index`` as the node's canonical chain has it now (its block may have changed in a
        reorg), or None: the tx is not mined (any more)."""
        contract = to_checksum_address(contract) if contract else self.deployment.topups
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        except Exception:  # noqa: BLE001 - web3 raises TransactionNotFound; providers differ
            return None
        if receipt is None:
            return None
        for log in receipt["logs"]:
            if (int(log["logIndex"]) == log_index and contract
                    and to_checksum_address(log["address"]) == contract
                    and log["topics"] and bytes(log["topics"][0]) == DEPOSITED_TOPIC):
                return self._deposit_log(log)
        return None

    # --------------------------------------------------------- registry

    def anchor_root(self, root: bytes, leaf_count: int) -> tuple[int, TxReceipt]:
        """Anchor a contribution batch's Merkle root; returns (batch id, receipt)."""
        receipt = self._send(self.registry.functions.anchor(root, leaf_count))
        logs = self.registry.events.RootAnchored().process_receipt(receipt)
        return int(logs[0]["args"]["batchId"]), receipt

    def verify_contribution(
        self, batch_id: int, proof: Sequence[bytes], leaf: ContributionLeaf
    ) -> bool:
        fn = self.registry.functions.verify(
            batch_id, list(proof), leaf.contributor, leaf.content_hash, leaf.contribution_id
        )
        return bool(self._call(fn))

    def batch_of_root(self, root: bytes) -> int | None:
        """The registry batch a root was anchored as, or None (never anchored)."""
        found, batch_id = self._call(self.registry.functions.batchOfRoot(root))
        return int(batch_id) if found else None

    def anchor_log(self, root: bytes, from_block: int = 0) -> tuple[int, str, int] | None:
        """(batch id, tx hash, block) of the RootAnchored event of ``root`` (an indexed topic),
        or None: how a crashed run finds the transaction it sent but never recorded."""
        logs = self.registry.events.RootAnchored().get_logs(
            argument_filters={"root": root}, from_block=from_block)
        if not logs:
            return None
        log = logs[0]
        return int(log["args"]["batchId"]), "0x" + bytes(log["transactionHash"]).hex(), int(log["blockNumber"])

    def get_batch(self, batch_id: int) -> Batch:
        root, leaf_count, anchored_at = self._call(self.registry.functions.getBatch(batch_id))
        return Batch(batch_id, bytes(root), int(leaf_count), int(anchored_at))

    def batch_count(self) -> int:
        return int(self.registry.functions.batchCount().call())
