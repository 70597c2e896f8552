"""QL runtime helpers: the operators with QLExpress 4 semantics, safe field/index/method access, budgets.

Compiled scripts call these helpers by name; nothing else of Python is reachable from a script. Values are plain
Python: None, bool, int, float, Decimal, str, list, dict, and QLFunction for lambdas and script functions.
Java numeric types are recovered from values where it matters (an int within 32 bits behaves as an Integer, within
64 bits as a Long, beyond that as a BigInteger; float is Double; Decimal is BigDecimal).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Any

from . import errors
from .budget import (
    CHUNK,
    DEFAULT_MAX_STEPS,
    DEFAULT_MEMORY_BYTES,
    RunState,
    _state,
    charge,
    charge_string,
    charge_value,
    new_list,
    new_map,
    running,
    stored,
    tick,
)
from .errors import QLError, QLMemoryError, QLRuntimeError, QLThrow, QLTimeoutError

__all__ = [
    "DEFAULT_MEMORY_BYTES",
    "RunState",
    "new_list",
    "new_map",
    "running",
    "tick",
]  # the budget helpers compiled scripts call

MAX_STRING_LENGTH = 1_000_000
MAX_LIST_LENGTH = 100_000
MAX_INT_BITS = 4096
_MAX_INT_DIGITS = 1234  # decimal digits of a 4096-bit integer, rounded up: more is refused before converting

NUMBER_TYPES = (int, float, Decimal)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Exact BigDecimal arithmetic: enough digits that + - * never round in practice, bounded so a script cannot make
# numbers grow without limit.
_DECIMAL = Context(
    prec=1000, rounding=ROUND_HALF_UP, Emax=999_999, Emin=-999_999, traps=[InvalidOperation, DivisionByZero, Overflow]
)
_DIVISION_EXTRA_PRECISION = 10  # qlexpress4.division.extra.precision
_DIVISION_MIN_SCALE = 10  # qlexpress4.division.min.scale


class Char(str):
    """A Java `char` (from `char c = ...` or `(char) x`): prints as its character, compares and adds as its code."""

    __slots__ = ()

    # Compiled `x == 97` is a plain Python comparison, so a char must answer it the way QL's == does.
    def __eq__(self, other: object) -> bool:
        if type(other) is Char:
            return str.__eq__(self, other)
        return is_number(other) and eq(ord(self), other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__


def fail(code: str, message: str) -> QLRuntimeError:
    return QLRuntimeError(message, code=code)


def type_name(value: Any) -> str:
    """The Java class name QLExpress would report for a value."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "Boolean"
    kind = type(value)
    if kind is int:
        if _INT32_MIN <= value <= _INT32_MAX:
            return "Integer"
        return "Long" if _INT64_MIN <= value <= _INT64_MAX else "BigInteger"
    if kind is float:
        return "Double"
    if kind is Decimal:
        return "BigDecimal"
    if kind is str:
        return "String"
    if kind is Char:
        return "Character"
    if isinstance(value, list):
        return "List"
    if isinstance(value, Mapping):
        return "Map"
    if isinstance(value, QLFunction):
        return "Function"
    return "Object"


def is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float or kind is Decimal


# -- string conversion (Java toString) -----------------------------------------------------------------------------


def java_str(value: Any) -> str:
    """String.valueOf(value) as Java prints it: null, true, 1.0E10, [1, 2], {a=1}."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if kind is Char:
        return str.__str__(value)
    out: list[str] = []
    _append_java_str(value, out, [0])
    return charge_string("".join(out))


def _append_java_str(value: Any, out: list[str], size: list[int]) -> None:
    if size[0] > MAX_STRING_LENGTH:
        raise fail(errors.EXECUTE_OPERATOR_EXCEPTION, f"string longer than {MAX_STRING_LENGTH} characters")
    kind = type(value)
    if kind is str:
        text = value
    elif value is None:
        text = "null"
    elif value is True:
        text = "true"
    elif value is False:
        text = "false"
    elif kind is int:
        text = str(value)
    elif kind is float:
        text = java_double(value)
    elif kind is Decimal:
        text = str(value)
    elif isinstance(value, list):
        out.append("[")
        for position, item in enumerate(value):
            if not position % CHUNK:
                charge(min(len(value) - position, CHUNK))
            if position:
                out.append(", ")
            _append_java_str(item, out, size)
        out.append("]")
        size[0] += 2 + 2 * len(value)
        return
    elif isinstance(value, Mapping):
        out.append("{")
        for position, (key, item) in enumerate(value.items()):
            if not position % CHUNK:
                charge(min(len(value) - position, CHUNK))
            if position:
                out.append(", ")
            _append_java_str(key, out, size)
            out.append("=")
            _append_java_str(item, out, size)
        out.append("}")
        size[0] += 2 + 3 * len(value)
        return
    elif isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, QLFunction):
        text = f"function {value.name}"
    else:
        text = "object"
    size[0] += len(text)
    out.append(text)


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxdict = 3, 8, 8
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = _SHORT_REPR.maxlong = 60


def describe(value: Any, limit: int = 80) -> str:
    """A short repr of a QL value for an error message: a few levels and elements only, so that describing a value
    that shares its parts (`a = [a, a]`) costs nothing like printing it."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def java_double(value: float) -> str:
    """Double.toString: plain notation in [1e-3, 1e7), else scientific like 1.0E10; always a fraction digit."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        return text if "." in text else text + ".0"
    _, digits, exponent = Decimal(repr(magnitude)).normalize().as_tuple()
    text = "".join(map(str, digits))
    power = len(text) - 1 + int(exponent)
    mantissa = text[0] + "." + (text[1:] or "0")
    return ("-" if value < 0 else "") + mantissa + "E" + str(power)


def concat(left: Any, right: Any) -> str:
    text = java_str(left) + java_str(right)
    if len(text) > MAX_STRING_LENGTH:
        raise fail(errors.EXECUTE_OPERATOR_EXCEPTION, f"string longer than {MAX_STRING_LENGTH} characters")
    return charge_string(text)


def template(*parts: Any) -> str:
    """A double-quoted string with ${} parts: each part as Java prints it, joined."""
    text = "".join(java_str(part) for part in parts)
    if len(text) > MAX_STRING_LENGTH:
        raise fail(errors.EXECUTE_OPERATOR_EXCEPTION, f"string longer than {MAX_STRING_LENGTH} characters")
    return charge_string(text)


# -- numbers ------------------------------------------------------------------------------------------------------


def _bad_operands(op: str, left: Any, right: Any) -> QLRuntimeError:
    return fail(
        errors.INVALID_BINARY_OPERAND,
        f"invalid operands for '{op}': {type_name(left)} and {type_name(right)}",
    )


def _checked_int(value: int) -> int:
    if -(1 << 63) <= value < (1 << 63) or value.bit_length() <= MAX_INT_BITS:
        return value
    raise fail(errors.INVALID_ARITHMETIC, f"integer result larger than {MAX_INT_BITS} bits")


def to_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def to_decimal(value: Any) -> Decimal:
    kind = type(value)
    if kind is Decimal:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise fail(errors.INVALID_ARITHMETIC, f"{java_double(value)} has no decimal value")
        return Decimal(repr(value))
    return Decimal(value)


def _decimal_op(operation: Callable[[Decimal, Decimal], Decimal], left: Any, right: Any) -> Decimal:
    try:
        return operation(to_decimal(left), to_decimal(right))
    except (Overflow, InvalidOperation) as exc:
        raise fail(errors.INVALID_ARITHMETIC, f"decimal result out of range ({type(exc).__name__})") from None


def _arith(
    op: str,
    left: Any,
    right: Any,
    ints: Callable[[int, int], int],
    floats: Callable[[float, float], float],
    decimals: Callable[[Decimal, Decimal], Decimal],
) -> Any:
    kl, kr = type(left), type(right)
    if kl is Char or kr is Char:
        left, right = _char_code(left), _char_code(right)
        kl, kr = type(left), type(right)
    if kl is int and kr is int:
        return _checked_int(ints(left, right))
    if not (is_number(left) and is_number(right)):
        raise _bad_operands(op, left, right)
    if kl is float or kr is float:
        return floats(to_float(left), to_float(right))
    return _decimal_op(decimals, left, right)


def _int_add(a: int, b: int) -> int:
    return a + b


def _int_sub(a: int, b: int) -> int:
    return a - b


def _int_mul(a: int, b: int) -> int:
    if a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
        raise fail(errors.INVALID_ARITHMETIC, f"integer result larger than {MAX_INT_BITS} bits")
    return a * b


def _float_add(a: float, b: float) -> float:
    return a + b


def _float_sub(a: float, b: float) -> float:
    return a - b


def _float_mul(a: float, b: float) -> float:
    return a * b


def double_overflow() -> QLRuntimeError:
    """An int too large for a double, in double arithmetic. QLExpress gives Infinity; QL reports the overflow."""
    return fail(errors.INVALID_ARITHMETIC, "numeric overflow: an integer too large for a double")


def add(left: Any, right: Any) -> Any:
    kl, kr = type(left), type(right)
    if kl is int and kr is int:
        return _checked_int(left + right)
    if (kl is float and (kr is float or kr is int)) or (kr is float and kl is int):
        try:
            return left + right
        except (
            OverflowError
        ):  # an int beyond the double range: the same error as compiled code's inline double arithmetic
            raise double_overflow() from None
    if kl is str or kr is str:
        return concat(left, right)
    return _arith("+", left, right, _int_add, _float_add, _DECIMAL.add)


def sub(left: Any, right: Any) -> Any:
    kl, kr = type(left), type(right)
    if kl is int and kr is int:
        return _checked_int(left - right)
    if (kl is float and (kr is float or kr is int)) or (kr is float and kl is int):
        try:
            return left - right
        except (
            OverflowError
        ):  # an int beyond the double range: the same error as compiled code's inline double arithmetic
            raise double_overflow() from None
    return _arith("-", left, right, _int_sub, _float_sub, _DECIMAL.subtract)


def mul(left: Any, right: Any) -> Any:
    kl, kr = type(left), type(right)
    if kl is int and kr is int and left.bit_length() + right.bit_length() <= MAX_INT_BITS:
        return left * right
    if (kl is float and (kr is float or kr is int)) or (kr is float and kl is int):
        try:
            return left * right
        except (
            OverflowError
        ):  # an int beyond the double range: the same error as compiled code's inline double arithmetic
            raise double_overflow() from None
    return _arith("*", left, right, _int_mul, _float_mul, _DECIMAL.multiply)


def div(left: Any, right: Any) -> Any:
    if not (is_number(left) and is_number(right)):
        raise _bad_operands("/", left, right)
    if type(left) is float or type(right) is float:
        return _float_divide(to_float(left), to_float(right))
    return decimal_divide(to_decimal(left), to_decimal(right))


def _float_divide(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or a != a:
            return math.nan
        negative = (a < 0) != (math.copysign(1.0, b) < 0)
        return -math.inf if negative else math.inf
    return a / b


def _digits(value: Decimal) -> int:
    return max(len(value.as_tuple().digits), 1)


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def decimal_divide(a: Decimal, b: Decimal) -> Decimal:
    """BigDecimal division as QLExpress 4 does it: exact when the quotient terminates, else rounded HALF_UP to
    precision max(prec)+10 and then to scale max(scale(a), scale(b), 10)."""
    if not b:
        raise fail(errors.INVALID_ARITHMETIC, "Division by zero")
    exact = Context(
        prec=_digits(a) + 4 * _digits(b) + 32, Emax=999_999, Emin=-999_999, traps=[Inexact, InvalidOperation, Overflow]
    )
    try:
        return exact.divide(a, b)
    except Inexact:
        pass
    except (InvalidOperation, Overflow):
        raise fail(errors.INVALID_ARITHMETIC, "decimal result out of range") from None
    precision = max(_digits(a), _digits(b)) + _DIVISION_EXTRA_PRECISION
    rounded = Context(prec=precision, rounding=ROUND_HALF_UP, Emax=999_999, Emin=-999_999).divide(a, b)
    scale = max(_scale(a), _scale(b), _DIVISION_MIN_SCALE)
    try:
        return rounded.quantize(Decimal(1).scaleb(-scale), context=_DECIMAL)
    except InvalidOperation:
        raise fail(errors.INVALID_ARITHMETIC, "decimal result out of range") from None


def mod(left: Any, right: Any) -> Any:
    kl, kr = type(left), type(right)
    if kl is int and kr is int:
        if right == 0:
            raise fail(errors.EXECUTE_OPERATOR_EXCEPTION, "/ by zero")
        remainder = abs(left) % abs(right)
        return -remainder if left < 0 else remainder
    if not (is_number(left) and is_number(right)):
        raise _bad_operands("%", left, right)
    if kl is float or kr is float:
        a, b = to_float(left), to_float(right)
        if b == 0 or math.isinf(a) or a != a or b != b:
            return math.nan
        return math.fmod(a, b)
    return _decimal_remainder(to_decimal(left), to_decimal(right))


def _decimal_remainder(a: Decimal, b: Decimal) -> Decimal:
    if not b:  # BigDecimal.remainder throws ArithmeticException, which QLExpress reports as a failed operator
        raise fail(errors.EXECUTE_OPERATOR_EXCEPTION, "Division by zero")
    return _decimal_op(_DECIMAL.remainder, a, b)


# Precise mode (QLOptions.precise): + - * / % convert both number operands to BigDecimal first.


def add_precise(left: Any, right: Any) -> Any:
    if type(left) is str or type(right) is str:
        return concat(left, right)
    return _precise("+", left, right, _DECIMAL.add)


def sub_precise(left: Any, right: Any) -> Any:
    return _precise("-", left, right, _DECIMAL.subtract)


def mul_precise(left: Any, right: Any) -> Any:
    return _precise("*", left, right, _DECIMAL.multiply)


def div_precise(left: Any, right: Any) -> Any:
    if not (is_number(left) and is_number(right)):
        raise _bad_operands("/", left, right)
    return decimal_divide(to_decimal(left), to_decimal(right))


def mod_precise(left: Any, right: Any) -> Any:
    if not (is_number(left) and is_number(right)):
        raise _bad_operands("%", left, right)
    return _decimal_remainder(to_decimal(left), to_decimal(right))


def _precise(op: str, left: Any, right: Any, operation: Callable[[Decimal, Decimal], Decimal]) -> Decimal:
    if not (is_number(left) and is_number(right)):
        raise _bad_operands(op, left, right)
    return _decimal_op(operation, left, right)


def neg(value: Any) -> Any:
    if is_number(value):
        return -value
    raise fail(errors.INVALID_UNARY_OPERAND, f"invalid operand for '-': {type_name(value)}")


def pos(value: Any) -> Any:
    if is_number(value):
        return value
    raise fail(errors.INVALID_UNARY_OPERAND, f"invalid operand for '+': {type_name(value)}")


def incdec_operand(op: str, value: Any) -> Any:
    """The value `++`/`--` start from: numbers only (not null, strings or chars)."""
    if is_number(value):
        return value
    raise fail(errors.INVALID_UNARY_OPERAND, f"invalid operand for '{op}': {type_name(value)}")


def invert(value: Any) -> Any:
    if type(value) is int:
        return ~value
    raise fail(errors.INVALID_UNARY_OPERAND, f"invalid operand for '~': {type_name(value)}")


def _wrap(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _shift_operands(op: str, left: Any, right: Any) -> tuple[int, int, int]:
    """The value, the distance and the Java width (32, 64, or 0 for BigInteger) of a shift."""
    if type(left) is not int or type(right) is not int:
        raise _bad_integer_operands(op, left, right)
    if _INT32_MIN <= left <= _INT32_MAX:
        return left, right & 31, 32
    if _INT64_MIN <= left <= _INT64_MAX:
        return left, right & 63, 64
    if right > MAX_INT_BITS:
        raise fail(errors.INVALID_ARITHMETIC, f"integer result larger than {MAX_INT_BITS} bits")
    return left, right, 0


def shl(left: Any, right: Any) -> int:
    value, distance, bits = _shift_operands("<<", left, right)
    return _checked_int(value << distance) if bits == 0 else _wrap(value << distance, bits)


def shr(left: Any, right: Any) -> int:
    value, distance, _ = _shift_operands(">>", left, right)
    return value >> distance


def ushr(left: Any, right: Any) -> int:
    value, distance, bits = _shift_operands(">>>", left, right)
    if bits == 0:
        return value >> distance
    return _wrap((value & ((1 << bits) - 1)) >> distance, bits)


def _bad_integer_operands(op: str, left: Any, right: Any) -> QLRuntimeError:
    """QLExpress reports two numbers that are not both integers as a failed operator, anything else as a bad operand."""
    if is_number(left) and is_number(right):
        return fail(
            errors.EXECUTE_OPERATOR_EXCEPTION, f"'{op}' needs integers, got {type_name(left)} and {type_name(right)}"
        )
    return _bad_operands(op, left, right)


def _bit_operands(op: str, left: Any, right: Any) -> tuple[Any, Any]:
    """`& | ^` take two integers, or two booleans where null reads as false (but not two nulls)."""
    if type(left) is int and type(right) is int:
        return left, right
    lb = left is None or left is True or left is False
    rb = right is None or right is True or right is False
    if lb and rb and not (left is None and right is None):
        return bool(left), bool(right)
    raise _bad_integer_operands(op, left, right)


def bit_and(left: Any, right: Any) -> Any:
    a, b = _bit_operands("&", left, right)
    return a & b


def bit_or(left: Any, right: Any) -> Any:
    a, b = _bit_operands("|", left, right)
    return a | b


def bit_xor(left: Any, right: Any) -> Any:
    a, b = _bit_operands("^", left, right)
    return a ^ b


# -- comparison ---------------------------------------------------------------------------------------------------


def _char_code(value: Any) -> Any:
    return ord(value) if type(value) is Char else value


def eq(left: Any, right: Any) -> bool:
    """Java-like ==: numbers by value across types, other values by equals (so 1 == "1" is false)."""
    if left is right:
        return True
    kl, kr = type(left), type(right)
    if kl is kr:
        if kl is float:
            return double_compare(left, right) == 0
        if kl is list or kl is dict:
            return java_equals(left, right)
        return left == right
    if (kl is int or kl is float or kl is Decimal) and (kr is int or kr is float or kr is Decimal):
        if kl is float or kr is float:
            return double_compare(to_float(left), to_float(right)) == 0
        return left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return java_equals(left, right)
    if kl is Char or kr is Char:
        left, right = _char_code(left), _char_code(right)
        return is_number(left) and is_number(right) and eq(left, right)
    return False


def double_compare(a: float, b: float) -> int:
    """Java's Double.compare, which QLExpress uses for == and <: -0.0 is below 0.0, NaN equals NaN and is above all."""
    if a < b:
        return -1
    if a > b:
        return 1
    if a == b:
        if a == 0.0:
            sign_a, sign_b = math.copysign(1.0, a), math.copysign(1.0, b)
            return (sign_a > sign_b) - (sign_a < sign_b)
        return 0
    return (a != a) - (b != b)  # at least one NaN


def java_equals(left: Any, right: Any) -> bool:
    """List and map equality is Java's equals: elements of the same class and value (so [1] != [1.0]). Every
    container visited is charged to the run's budget, so values that share parts (`a = [a, a]`) are compared part
    by part and the budget stops a comparison that would not end."""
    if left is right:
        return True  # as Java's AbstractList/AbstractMap.equals: an object equals itself
    if isinstance(left, list):
        if not isinstance(right, list) or len(left) != len(right):
            return False
        charge(len(left))
        return all(java_equals(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Mapping):
        if not isinstance(right, Mapping) or left.keys() != right.keys():
            return False
        charge(len(left))
        return all(java_equals(left[key], right[key]) for key in left)
    if is_number(left) and is_number(right):
        return type_name(left) == type_name(right) and eq(left, right)
    return type(left) is type(right) and left == right


def index_of_equal(items: list[Any], value: Any) -> int:
    """The first position holding a value QL-equal to `value`, or -1; charged chunk by chunk."""
    if type(value) is str:  # no other kind of value is QL-equal to a string: Python's own scan gives the same answer
        charge(len(items))
        try:
            return items.index(value)
        except ValueError:
            return -1
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        charge(len(chunk))
        for offset, item in enumerate(chunk):
            if eq(item, value):
                return start + offset
    return -1


def ne(left: Any, right: Any) -> bool:
    return not eq(left, right)


def compare(op: str, left: Any, right: Any) -> int:
    kl, kr = type(left), type(right)
    if (kl is Char) != (kr is Char):
        left, right = _char_code(left), _char_code(right)
        kl, kr = type(left), type(right)
    if (kl is int or kl is float or kl is Decimal) and (kr is int or kr is float or kr is Decimal):
        if kl is float or kr is float:
            return double_compare(to_float(left), to_float(right))
        return (left > right) - (left < right)
    if kl is kr and (kl is str or kl is bool or kl is Char):
        return (left > right) - (left < right)
    if left is right:
        return 0
    raise _bad_operands(op, left, right)


def lt(left: Any, right: Any) -> bool:
    return compare("<", left, right) < 0


def le(left: Any, right: Any) -> bool:
    return compare("<=", left, right) <= 0


def gt(left: Any, right: Any) -> bool:
    return compare(">", left, right) > 0


def ge(left: Any, right: Any) -> bool:
    return compare(">=", left, right) >= 0


# avoidNullPointer: an ordering comparison with a null operand is false.


def lt_anp(left: Any, right: Any) -> bool:
    return left is not None and right is not None and compare("<", left, right) < 0


def le_anp(left: Any, right: Any) -> bool:
    return left is not None and right is not None and compare("<=", left, right) <= 0


def gt_anp(left: Any, right: Any) -> bool:
    return left is not None and right is not None and compare(">", left, right) > 0


def ge_anp(left: Any, right: Any) -> bool:
    return left is not None and right is not None and compare(">=", left, right) >= 0


def in_(left: Any, right: Any) -> bool:
    if right is None or left is None:
        return left is None and right is None
    if isinstance(right, list | tuple):
        return index_of_equal(list(right) if type(right) is tuple else right, left) >= 0
    if type(right) is str:
        charge(len(right))
        return java_str(left) in right
    raise _bad_operands("in", left, right)


def not_in(left: Any, right: Any) -> bool:
    return not in_(left, right)


def like(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if type(left) is not str or type(right) is not str:
        raise _bad_operands("like", left, right)
    return like_match(left, right)


def not_like(left: Any, right: Any) -> bool:
    return not like(left, right)


def like_match(text: str, pattern: str) -> bool:
    """SQL LIKE with `%` as the only wildcard, matched greedily without regular expressions (linear, no backtracking)."""
    pieces = pattern.split("%")
    if len(pieces) == 1:
        return text == pattern
    first, last = pieces[0], pieces[-1]
    if not text.startswith(first) or len(text) < len(first) + len(last) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for piece in pieces[1:-1]:
        if piece:
            found = text.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
    return True


# -- logic --------------------------------------------------------------------------------------------------------


def _not_boolean(code: str, op: str, value: Any) -> QLRuntimeError:
    return fail(code, f"'{op}' needs a boolean, got {type_name(value)}")


def and_left(value: Any) -> bool:
    if value is True or value is False:
        return value
    if value is None:
        return False
    raise _not_boolean(errors.CONDITION_BOOL_REQUIRED, "&&", value)


def and_right(value: Any) -> bool:
    if value is True or value is False:
        return value
    if value is None:
        return False
    raise _not_boolean(errors.INVALID_BINARY_OPERAND, "&&", value)


def or_left(value: Any) -> bool:
    if value is True or value is False:
        return value
    if value is None:
        raise _not_boolean(errors.INVALID_BINARY_OPERAND, "||", value)
    raise _not_boolean(errors.CONDITION_BOOL_REQUIRED, "||", value)


def or_right(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _not_boolean(errors.INVALID_BINARY_OPERAND, "||", value)


def and_all(values: tuple[Any, ...]) -> bool:
    """`and` (and `&&` with short-circuit off): every operand evaluated, then checked and combined."""
    result = and_right(values[0])
    for value in values[1:]:
        result = and_right(value) and result
    return result


def or_all(values: tuple[Any, ...]) -> bool:
    result = or_right(values[0])
    for value in values[1:]:
        result = or_right(value) or result
    return result


def not_(value: Any) -> bool:
    if value is True or value is False:
        return not value
    if value is None:
        return True
    raise fail(errors.INVALID_UNARY_OPERAND, f"invalid operand for '!': {type_name(value)}")


def condition(value: Any) -> bool:
    """if / ?: conditions: a boolean, or null for the else branch."""
    if value is True or value is False:
        return value
    if value is None:
        return False
    raise _not_boolean(errors.CONDITION_BOOL_REQUIRED, "condition", value)


def while_condition(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _not_boolean(errors.WHILE_CONDITION_BOOL_REQUIRED, "while", value)


def for_condition(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _not_boolean(errors.FOR_CONDITION_BOOL_REQUIRED, "for", value)


# -- types, casts and typed variables -----------------------------------------------------------------------------

_INT_BITS = {"int": 32, "Integer": 32, "long": 64, "Long": 64, "short": 16, "Short": 16, "byte": 8, "Byte": 8}
_FLOAT_TYPES = frozenset({"double", "Double", "float", "Float"})
_LIST_TYPES = frozenset({"List", "ArrayList", "LinkedList", "Collection", "Iterable"})
_MAP_TYPES = frozenset({"Map", "HashMap", "LinkedHashMap", "TreeMap"})


def _narrow(value: Any, bits: int) -> int:
    """Java narrowing: floating values truncate toward zero and saturate (int/long), integers wrap."""
    if type(value) is int:
        return _wrap(value, bits)
    if value != value:
        return 0
    if isinstance(value, float) and math.isinf(value):
        limit_bits = max(bits, 32)
        return (1 << (limit_bits - 1)) - 1 if value > 0 else -(1 << (limit_bits - 1))
    limit_bits = max(bits, 32)
    if type(value) is Decimal and value.adjusted() > 2 * limit_bits:  # saturates anyway: never convert the digits
        truncated = 1 << limit_bits if value > 0 else -(1 << limit_bits)
    else:
        truncated = int(value)
    truncated = max(-(1 << (limit_bits - 1)), min((1 << (limit_bits - 1)) - 1, truncated))
    return _wrap(truncated, bits) if bits < 32 else truncated


def convert(type_name_: str, value: Any, code: str) -> Any:
    """The value stored into a variable, parameter or cast of a declared type; `code` is raised on a mismatch."""
    if value is None:
        return None
    base = type_name_.rsplit(".", 1)[-1]
    if base in _INT_BITS:
        if is_number(value):
            return _narrow(value, _INT_BITS[base])
    elif base in _FLOAT_TYPES:
        if is_number(value):
            return to_float(value)
    elif base in ("boolean", "Boolean"):
        if value is True or value is False:
            return value
    elif base == "String":
        if type(value) is str:
            return value
    elif base in ("char", "Character"):
        if isinstance(value, str) and len(value) == 1:
            return Char(value)
        if is_number(value):
            return Char(chr(_narrow(value, 32) & 0xFFFF))  # Java: a double narrows to int first, then to char
    elif base == "BigDecimal":
        if is_number(value):
            return to_decimal(value)
    elif base == "BigInteger":
        if is_number(value):
            return _big_integer(value)
    elif base == "Number":
        if is_number(value):
            return value
    elif base in _LIST_TYPES or base.endswith("[]"):
        if isinstance(value, list):
            return value
    elif base in _MAP_TYPES:
        if isinstance(value, Mapping):
            return value
    else:
        return value
    raise fail(code, f"cannot convert {type_name(value)} to {type_name_}")


def _big_integer(value: int | float | Decimal) -> int:
    """(BigInteger) x: refused, before any conversion, when x has more digits than a MAX_INT_BITS integer."""
    if type(value) is Decimal and value.is_finite() and value.adjusted() >= _MAX_INT_DIGITS:
        raise fail(errors.INVALID_ARITHMETIC, f"integer value larger than {MAX_INT_BITS} bits")
    try:
        return _checked_int(int(value))
    except (OverflowError, ValueError):  # infinity or NaN
        raise fail(errors.INVALID_ARITHMETIC, f"{java_str(value)} has no integer value") from None


def cast(type_name_: str, value: Any) -> Any:
    return convert(type_name_, value, errors.INCOMPATIBLE_TYPE_CAST)


_BOXED = {
    "int": "Integer", "long": "Long", "short": "Short", "byte": "Byte", "double": "Double", "float": "Float",
    "boolean": "Boolean", "char": "Character",
}  # fmt: skip


def instance_of(value: Any, type_name_: str) -> bool:
    if value is None:
        return False
    base = type_name_.rsplit(".", 1)[-1]
    base = _BOXED.get(base, base)
    actual = type_name(value)
    if base == actual or base == "Object":
        return True
    if base == "Number":
        return is_number(value)
    if base in _LIST_TYPES:
        return actual == "List"
    if base in _MAP_TYPES:
        return actual == "Map"
    if base in ("CharSequence", "Comparable"):
        return actual == "String" or (base == "Comparable" and is_number(value))
    return False


# -- access to maps and lists -------------------------------------------------------------------------------------


def field(obj: Any, name: str) -> Any:
    if type(obj) is dict:
        return obj.get(name)
    if obj is None:
        raise fail(errors.NULL_FIELD_ACCESS, f"cannot read field '{name}' of null")
    if isinstance(obj, Mapping):
        return obj.get(name)
    if isinstance(obj, list) and name == "length":
        return len(obj)
    raise fail(errors.FIELD_NOT_FOUND, f"{type_name(obj)} has no field '{name}'")


def field_or_null(obj: Any, name: str) -> Any:
    """`?.` and avoidNullPointer: a null receiver gives null."""
    if obj is None:
        return None
    return field(obj, name)


def class_field(class_name: str, name: str) -> Any:
    raise fail(errors.FIELD_NOT_FOUND, f"field '{name}' of class {class_name} is not accessible")


def class_method(class_name: str, name: str, *args: Any) -> Any:
    raise fail(errors.METHOD_NOT_FOUND, f"method '{name}' of class {class_name} is not accessible")


def new_object(type_name_: str) -> Any:
    raise fail(errors.NO_SUITABLE_CONSTRUCTOR, f"cannot create {type_name_}: Java objects are not accessible")


def method_ref(obj: Any, name: str, anp: bool) -> Any:
    if obj is None:
        if anp:
            return None
        raise fail(errors.NULL_METHOD_ACCESS, f"cannot reference method '{name}' of null")
    raise fail(errors.METHOD_NOT_FOUND, f"method reference '{name}' is not supported")


def spread_field(obj: Any, name: str, anp: bool) -> list[Any]:
    if isinstance(obj, Mapping):
        if name in ("key", "value"):
            return list(obj.keys() if name == "key" else obj.values())
        raise fail(errors.FIELD_NOT_FOUND, f"a spread over a Map has fields 'key' and 'value', not '{name}'")
    if not isinstance(obj, list):
        raise fail(errors.NONTRAVERSABLE_OBJECT, f"cannot spread over {type_name(obj)}")
    out: list[Any] = []
    _spread_into(out, obj, name, anp)
    return charge_value(out)


def _spread_into(out: list[Any], obj: list[Any], name: str, anp: bool) -> None:
    charge(len(obj))
    if len(out) + len(obj) > MAX_LIST_LENGTH:
        raise fail(errors.EXCEED_MAX_ARR_LENGTH, f"'*.' result longer than {MAX_LIST_LENGTH} elements")
    for item in obj:
        if item is None:
            if not anp:
                raise fail(errors.NULL_FIELD_ACCESS, f"cannot read field '{name}' of null")
            out.append(None)
        elif isinstance(item, list) and name != "length":
            _spread_into(out, item, name, anp)
        else:
            out.append(field(item, name))


def _list_position(items: list[Any], index: Any) -> int:
    kind = type(index)
    if kind is int:
        position = index
    elif kind is float or kind is Decimal:
        if not math.isfinite(index):
            raise fail(errors.INVALID_INDEX, "index must be a finite number")
        position = int(index)
    else:
        raise fail(errors.INVALID_INDEX, f"a list index must be a number, got {type_name(index)}")
    size = len(items)
    if position < 0:
        position += size
    if not 0 <= position < size:
        raise fail(errors.INDEX_OUT_BOUND, f"index {index} out of bounds for length {size}")
    return position


def index(obj: Any, key: Any) -> Any:
    if isinstance(obj, list):
        return obj[_list_position(obj, key)]
    if isinstance(obj, Mapping):
        try:
            return obj.get(key)
        except TypeError:  # an unhashable key (a list or map) is simply absent
            return None
    raise fail(errors.NONINDEXABLE_OBJECT, f"{type_name(obj)} cannot be indexed")


def index_or_null(obj: Any, key: Any) -> Any:
    return None if obj is None else index(obj, key)


OPEN_BOUND = object()  # the bound a slice leaves out (`l[1:]`), unlike an explicit null


def slice_(obj: Any, start: Any, stop: Any) -> Any:
    first, last = _slice_bound(start), _slice_bound(stop)
    if not isinstance(obj, list):
        raise fail(errors.NONINDEXABLE_OBJECT, f"{type_name(obj)} cannot be sliced")
    return charge_value(obj[first:last])


def slice_or_null(obj: Any, start: Any, stop: Any) -> Any:
    return None if obj is None else slice_(obj, start, stop)


def _slice_bound(value: Any) -> int | None:
    if value is OPEN_BOUND:
        return None
    if not is_number(value) or (type(value) is not int and not math.isfinite(value)):
        raise fail(errors.INVALID_INDEX, f"a slice bound must be a number, got {type_name(value)}")
    return int(value)


def set_field(obj: Any, name: str, value: Any) -> Any:
    if isinstance(obj, dict):
        stored(obj, name, value)
        obj[name] = value
        return value
    if obj is None:
        raise fail(errors.NULL_FIELD_ACCESS, f"cannot set field '{name}' of null")
    raise fail(errors.FIELD_NOT_FOUND, f"{type_name(obj)} has no field '{name}'")


def set_index(obj: Any, key: Any, value: Any) -> Any:
    if isinstance(obj, list):
        position = _list_position(obj, key)
        stored(obj, position, value)
        obj[position] = value
        return value
    if isinstance(obj, dict):
        try:
            stored(obj, key, value)
            obj[key] = value
        except TypeError:
            raise fail(errors.INVALID_ARGUMENT, f"a {type_name(key)} cannot be a map key") from None
        return value
    if obj is None:
        raise fail(errors.NONINDEXABLE_OBJECT, "null cannot be indexed")
    raise fail(errors.NONINDEXABLE_OBJECT, f"{type_name(obj)} cannot be indexed")


def iterate(value: Any) -> Any:
    """for (x : value): QLExpress iterates Iterables and arrays, so lists only (a map is not Iterable in Java).
    The loop runs over a copy, so the body may change the list."""
    if isinstance(value, list):
        charge(len(value))
        return list(value)
    raise fail(errors.FOR_EACH_ITERABLE_REQUIRED, f"cannot iterate over {type_name(value)}")


# -- functions and methods ----------------------------------------------------------------------------------------


class QLFunction:
    """A lambda or script function as a QL value; calling it from Python runs it under a budget."""

    __slots__ = ("fn", "name", "mutates")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.mutates = False  # set on a program's exported functions when they may modify their arguments

    def __call__(self, *args: Any) -> Any:
        if _state.current is not None:
            return self.fn(*args)
        with running(DEFAULT_MAX_STEPS, None):
            return call_guarded(self.fn, args)

    def __repr__(self) -> str:
        return f"<QL function {self.name}>"


def call_value(value: Any, name: str, args: tuple[Any, ...], anp: bool) -> Any:
    """Call a variable's value: only QL lambdas and functions are callable from a script."""
    if isinstance(value, QLFunction):
        return value(*args)
    if value is None and anp:
        return None
    raise fail(errors.FUNCTION_NOT_FOUND, f"function '{name}' not found")


def make_method_caller(methods: Mapping[str, Callable[..., Any]], anp: bool) -> Callable[..., Any]:
    def call_method(receiver: Any, name: str, *args: Any) -> Any:
        if receiver is None:
            if anp:
                return None
            raise fail(errors.NULL_METHOD_ACCESS, f"cannot call method '{name}' of null")
        implementation = methods.get(name)
        if implementation is not None:
            try:
                return implementation(receiver, *args)
            except QLRuntimeError as exc:
                if exc.code != errors.METHOD_NOT_FOUND or not isinstance(receiver, Mapping):
                    raise
        if isinstance(receiver, Mapping):
            member = receiver.get(name)
            if isinstance(member, QLFunction):
                return member(*args)
        raise fail(errors.METHOD_NOT_FOUND, f"{type_name(receiver)} has no method '{name}'")

    return call_method


def make_method_caller_optional(call_method: Callable[..., Any]) -> Callable[..., Any]:
    def call_optional(receiver: Any, name: str, *args: Any) -> Any:
        return None if receiver is None else call_method(receiver, name, *args)

    return call_optional


def make_spread_method_caller(call_method: Callable[..., Any], anp: bool) -> Callable[..., Any]:
    def spread_method(receiver: Any, name: str, *args: Any) -> list[Any]:
        if not isinstance(receiver, list):
            raise fail(errors.NONTRAVERSABLE_OBJECT, f"cannot spread over {type_name(receiver)}")
        charge(len(receiver))
        return charge_value([call_method(item, name, *args) for item in receiver])

    return spread_method


# -- throw / catch ------------------------------------------------------------------------------------------------


def throw(value: Any) -> None:
    raise QLThrow(value)


def catchable(exc: BaseException) -> bool:
    """Budget and depth failures end the run; a script's try/catch must not swallow them."""
    return not isinstance(exc, QLTimeoutError | QLMemoryError | RecursionError | MemoryError)


def caught_value(exc: BaseException) -> Any:
    if isinstance(exc, QLThrow):
        return exc.value
    if isinstance(exc, QLError):
        return {"code": exc.code, "message": exc.reason}
    return {"code": errors.BIZ_EXCEPTION, "message": f"{type(exc).__name__}: {exc}"}


def catch_matches(exc: BaseException, types: tuple[str, ...]) -> bool:
    value = exc.value if isinstance(exc, QLThrow) else None
    if not isinstance(exc, QLThrow):
        return any(t.rsplit(".", 1)[-1] in ("Object", "Exception", "Throwable", "RuntimeException") for t in types)
    return any(instance_of(value, t) or t.rsplit(".", 1)[-1] in ("Object", "Throwable") for t in types)


# -- budgets (see budget.py) -------------------------------------------------------------------------------


def as_ql_error(exc: BaseException) -> QLError:
    """The one mapping of a failure inside compiled code (or a host function it called) to a QLError; used by
    Program.run and by script functions called from Python, so both report the same code."""
    if isinstance(exc, QLError):
        return exc
    if isinstance(exc, RecursionError):
        return fail(errors.EXECUTE_OPERATOR_EXCEPTION, "call depth limit exceeded (recursion too deep)")
    if isinstance(exc, OverflowError):  # inline double arithmetic with an int too large for a double
        return double_overflow()
    if isinstance(exc, MemoryError):
        return QLMemoryError("out of memory")
    return fail(errors.BIZ_EXCEPTION, f"{type(exc).__name__}: {exc}")  # a host function failed


def call_guarded(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """Call compiled code from Python, turning every failure into a QLError."""
    try:
        return fn(*args)
    except QLError:
        raise
    except Exception as exc:
        error = as_ql_error(exc)
        raise error from (exc if error.code == errors.BIZ_EXCEPTION else None)  # keep a host function's traceback


def set_global(store: dict[str, Any], name: str, value: Any) -> Any:
    store[name] = value
    return value
